"""Loading instance state written by an older serializer version.

State carries ``serializer_version`` (``spiff-<SpiffWorkflow format>+certflow-<ours>``). A
state from an older SpiffWorkflow format goes through SpiffWorkflow's own migrations; our own
format changes add a step here. An unknown version refuses to load rather than guess.
"""

from __future__ import annotations

import copy
from typing import Any

from SpiffWorkflow.bpmn.serializer.migration.version_migration import MIGRATIONS

from certflow.engine.spiff import SERIALIZER


def migrate_state(state: dict[str, Any], version: str, spec: Any = None,
                  subprocess_specs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``state`` in the current format. SpiffWorkflow's migrations read the spec
    (``dct['spec']['task_specs']``) from the full serialization it writes; certflow keeps the
    spec once per definition version, so the definition's spec is lent to them for the call."""
    spiff, _, ours = version.partition("+")
    if not spiff.startswith("spiff-") or ours != "certflow-1":
        raise ValueError(f"cannot load instance state of serializer version {version!r}")
    spiff_version = spiff.removeprefix("spiff-")
    if spiff_version == SERIALIZER.VERSION:
        return state
    if spiff_version not in MIGRATIONS:
        raise ValueError(f"no migration from SpiffWorkflow state format {spiff_version}")
    registry = SERIALIZER.registry
    work = copy.deepcopy(state)
    work["spec"] = registry.convert(spec) if spec is not None else {"task_specs": {}}
    work["subprocess_specs"] = {k: registry.convert(v) for k, v in (subprocess_specs or {}).items()}
    MIGRATIONS[spiff_version](work)  # one call, as SpiffWorkflow's own serializer does
    for lent in ("spec", "subprocess_specs", "VERSION", SERIALIZER.VERSION_KEY):
        work.pop(lent, None)
    return work
