"""Loading instance state written by an older serializer version.

State carries ``serializer_version`` (``spiff-<SpiffWorkflow format>+certflow-<ours>``). A
state from an older SpiffWorkflow format goes through SpiffWorkflow's own migrations; our own
format changes add a step here. An unknown version refuses to load rather than guess.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.serializer.migration.version_migration import MIGRATIONS

from certflow.engine.spiff import SERIALIZER


def migrate_state(state: dict[str, Any], version: str) -> dict[str, Any]:
    spiff, _, ours = version.partition("+")
    if not spiff.startswith("spiff-") or ours != "certflow-1":
        raise ValueError(f"cannot load instance state of serializer version {version!r}")
    spiff_version = spiff.removeprefix("spiff-")
    if spiff_version != SERIALIZER.VERSION:
        if spiff_version not in MIGRATIONS:
            raise ValueError(f"no migration from SpiffWorkflow state format {spiff_version}")
        MIGRATIONS[spiff_version](state)
    return state
