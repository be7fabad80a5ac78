"""The process owners' studio, as the facade offers it: drafts, the deploy check run on a
draft, deploy from a draft, the version history with what changed, and the handler catalogue
the modeler's properties panel fills service tasks from.

Only people holding the ``process_owner`` role use any of it. A draft is a process folder's
files (``{path: text}``) kept on the server; saving one changes nothing that runs. Deploying
it runs exactly the checks ``certflow deploy`` runs (``deploy.parse_sources``) and stores a new
version; running instances keep the version they started on.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from certflow.clock import CLOCK
from certflow.engine import deploy as deploying
from certflow.engine import diagram_diff, rules
from certflow.engine.conditions import ConditionProblem, condition_problem
from certflow.engine.dto import DeployedVersion
from certflow.engine.errors import DeployError, Forbidden, NotFound, Problem
from certflow.i18n import Message, N_
from certflow.store.models import Definition
from certflow.store.studio import StudioDraft, next_revision, save_into

if TYPE_CHECKING:
    from certflow.engine.facade import Actor

ROLE = "process_owner"
_PROCESS_ID = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


def studio_only(actor: "Actor", what: str = "use the studio") -> None:
    """Process owners only: the studio, and whatever else changes what new cases run (the
    API's deploy), so a diagram reaches production by one role whichever door it takes."""
    if ROLE not in actor.groups:
        raise Forbidden(f"only process owners may {what}")


@dataclass(frozen=True)
class Workspace:
    """What the modeler opens: the draft when there is one, else the latest version."""

    process_id: str
    sources: dict[str, str]
    base_version: int | None
    is_draft: bool
    saved_by: str | None
    saved_at: datetime | None
    revision: int = 0  # what a save must carry back (0: no draft yet)


@dataclass(frozen=True)
class VersionInfo:
    process_id: str
    version: int
    deployed_at: datetime
    deployed_by: str
    changes: diagram_diff.VersionDiff


@dataclass(frozen=True)
class DraftChanges:
    """A draft against the newest deployed version (None: never deployed): what a deploy changes."""

    newest: int | None
    changes: diagram_diff.VersionDiff


class StudioMixin:
    """Mixed into ``Engine`` (needs ``session()``, ``settings``, ``registry``, ``ensure_schedules``)."""

    settings: Any
    registry: Any
    session: Any
    ensure_schedules: Any

    def studio_processes(self, actor: "Actor") -> list[dict[str, Any]]:
        """Every deployed process (latest version) and every draft, by process id."""
        studio_only(actor)
        with self.session() as session:
            found: dict[str, dict[str, Any]] = {}
            for row in session.execute(select(Definition.process_id, Definition.name, Definition.version,
                                              Definition.deployed_at, Definition.deployed_by)
                                       .order_by(Definition.process_id, Definition.version)).all():
                found[row.process_id] = {"process_id": row.process_id, "name": row.name,
                                         "version": row.version, "deployed_at": row.deployed_at,
                                         "deployed_by": row.deployed_by, "draft": None}
            for draft in session.scalars(select(StudioDraft)):
                entry = found.setdefault(draft.process_id, {"process_id": draft.process_id,
                                                            "name": draft.process_id, "version": None})
                entry["draft"] = {"saved_by": draft.saved_by, "saved_at": draft.saved_at}
            return [found[k] for k in sorted(found)]

    def workspace(self, actor: "Actor", process_id: str) -> Workspace:
        studio_only(actor)
        with self.session() as session:
            draft = session.get(StudioDraft, process_id)
            if draft is not None:
                return Workspace(process_id, dict(draft.sources), draft.base_version, True,
                                 draft.saved_by, draft.saved_at, draft.revision)
            row = rules.definition(session, process_id, None)
            return Workspace(process_id, dict(row.sources), row.version, False, None, None)

    def save_draft(self, actor: "Actor", process_id: str, sources: dict[str, str],
                   base_version: int | None = None, revision: int | None = None) -> Workspace:
        """Keep ``sources`` as the process's draft. Refused (DeployError, nothing saved) when
        it cannot even be parsed: not BPMN, a DOCTYPE, too large, odd file names. Convention
        problems are the deploy check's to report: a draft may be work in progress.
        ``revision`` is the one the editor loaded: DraftConflict (nothing saved) when someone
        saved, deployed or discarded the draft since; None saves whatever is there."""
        studio_only(actor)
        _valid_id(process_id)
        problems = deploying.source_problems(sources)
        if problems:
            raise DeployError(problems)
        with self.session() as session:
            if base_version is None:
                latest = session.scalar(select(Definition.version).where(Definition.process_id == process_id)
                                        .order_by(Definition.version.desc()).limit(1))
                base_version = latest
            now = _now()

            def fill(draft: StudioDraft) -> None:
                draft.sources, draft.base_version = dict(sources), base_version
                draft.saved_by, draft.saved_at = actor.username, now

            draft = save_into(session, StudioDraft, process_id, revision, process_id, fill)
            return Workspace(process_id, dict(sources), base_version, True, actor.username, now, draft.revision)

    def upload_diagram(self, actor: "Actor", process_id: str, text: str) -> Workspace:
        """Replace the process's diagram (its one .bpmn file) in the draft with an uploaded one."""
        current = self.workspace(actor, process_id)
        bpmn = next((n for n in sorted(current.sources) if n.endswith(".bpmn")), f"{process_id}.bpmn")
        return self.save_draft(actor, process_id, {**current.sources, bpmn: text}, current.base_version)

    def discard_draft(self, actor: "Actor", process_id: str) -> None:
        studio_only(actor)
        with self.session() as session:
            draft = session.get(StudioDraft, process_id)
            if draft is not None:
                session.delete(draft)

    def check_sources(self, actor: "Actor", process_id: str, sources: dict[str, str]) -> list[Problem]:
        """Every problem ``certflow deploy`` would report for this process, writing nothing."""
        studio_only(actor)
        _valid_id(process_id)
        return self._problems(process_id, sources)[1]

    def condition_problem(self, actor: "Actor", source: str) -> ConditionProblem | None:
        """What deploy would say of ``source`` as a sequence flow's condition (None: it would
        run); the modeler's panel asks as the owner types one."""
        studio_only(actor)
        return condition_problem(source)

    def _problems(self, process_id: str, sources: dict[str, str]) -> tuple[Any, list[Problem]]:
        problems = deploying.source_problems(sources)
        if problems:
            return None, problems
        bundle = deploying.parse_sources(process_id, sources, self.registry)
        problems = list(bundle.problems)
        if not problems and bundle.process_id != process_id:
            problems.append(Problem(next(n for n in sources if n.endswith(".bpmn")), None, Message(
                N_("the executable process has id %(found)r; expected %(expected)r"),
                found=bundle.process_id, expected=process_id)))
        problems += deploying.shared_problems(self.settings.processes_dir, self.registry)
        return bundle, problems

    def deploy_draft(self, actor: "Actor", process_id: str, revision: int | None = None) -> DeployedVersion:
        """Deploy the process's draft as its next version (or report it unchanged); the draft
        is gone afterwards. DeployError with every problem, nothing stored, otherwise; with
        ``revision`` (the draft the owner reviewed), DraftConflict if it was saved since."""
        studio_only(actor)
        rules.staff_only(actor, "deploy")
        with self.session() as session:
            draft = session.get(StudioDraft, process_id, with_for_update=True)
            if revision is not None:
                next_revision(draft, revision, process_id)
            if draft is None:
                raise NotFound(Message(N_("no draft of %(process_id)r to deploy"), process_id=process_id))
            bundle, problems = self._problems(process_id, dict(draft.sources))
            if problems:
                raise DeployError(problems)
            deployed = deploying.store_bundle(session, bundle, actor.username)
            session.delete(draft)
        self.ensure_schedules()
        return deployed

    def versions(self, actor: "Actor", process_id: str) -> list[VersionInfo]:
        """Newest first, each with what changed since the version before it."""
        studio_only(actor)
        with self.session() as session:
            rows = _definitions(session, process_id)
            found: list[VersionInfo] = []
            previous: dict[str, str] = {}
            for row in rows:
                found.append(VersionInfo(row.process_id, row.version, row.deployed_at, row.deployed_by,
                                         diagram_diff.diff(previous, row.sources)))
                previous = row.sources
            return found[::-1]

    def draft_changes(self, actor: "Actor", process_id: str, sources: dict[str, str]) -> DraftChanges:
        """What deploying ``sources`` would change against the newest deployed version."""
        studio_only(actor)
        _valid_id(process_id)
        with self.session() as session:
            newest = session.execute(select(Definition.version, Definition.sources)
                                     .where(Definition.process_id == process_id)
                                     .order_by(Definition.version.desc()).limit(1)).first()
            old = dict(newest.sources) if newest is not None else {}
            return DraftChanges(newest.version if newest is not None else None, diagram_diff.diff(old, sources))

    def version_diff(self, actor: "Actor", process_id: str, old: int, new: int) -> diagram_diff.VersionDiff:
        studio_only(actor)
        with self.session() as session:
            return diagram_diff.diff(rules.definition(session, process_id, old).sources,
                                     rules.definition(session, process_id, new).sources)

    def version_sources(self, actor: "Actor", process_id: str, version: int) -> dict[str, str]:
        studio_only(actor)
        with self.session() as session:
            return dict(rules.definition(session, process_id, version).sources)

    def restore_version(self, actor: "Actor", process_id: str, version: int) -> Workspace:
        """Make an earlier (or any) version the draft, to edit or deploy again."""
        sources = self.version_sources(actor, process_id, version)
        return self.save_draft(actor, process_id, sources, version)

    def handler_catalogue(self, actor: "Actor") -> dict[str, Any]:
        """The registry as the properties panel needs it: each operator with its typed
        parameters, the start guards and the assignment rules. Descriptions are in English
        (the summaries and parameter help handlers register); the page translates them."""
        studio_only(actor)
        return handler_catalogue(self.registry)


def handler_catalogue(registry: Any) -> dict[str, Any]:
    operators = []
    for name in registry:
        handler = registry.handlers[name]
        params = []
        for field_name, info in handler.input_model.model_fields.items():
            annotation = info.annotation
            params.append({
                "name": field_name, "type": _type_name(annotation), "bpmn_type": _bpmn_type(annotation),
                "required": info.is_required(),
                "default": None if info.is_required() else repr(info.get_default(call_default_factory=True)),
                "description": info.description or registry.parameter_help.get(field_name, ""),
            })
        doc = (handler.fn.__doc__ or "").strip().split("\n\n")[0]
        operators.append({"name": name, "effects": _effects(handler),
                          "description": handler.summary or " ".join(doc.split()), "parameters": params})
    return {"operators": operators, "guards": sorted(registry.guards),
            "assignment_rules": sorted(registry.conflict_rules)}


def _effects(handler: Any) -> str:
    return "database" if handler.in_transaction else "outbox" if handler.detached else "outside"


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _bpmn_type(annotation: Any) -> str:
    origin = typing.get_origin(annotation) or annotation
    for kind in (str, dict, list, int, float, bool):
        if origin is kind:
            return kind.__name__
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return _bpmn_type(args[0]) if len(args) == 1 else "any"


def _definitions(session: Session, process_id: str) -> list[Row[Any]]:
    """A process's versions, oldest first, with their sources: not their specs, elements and
    forms, the rest of a definition row (the studio's version list diffs every version)."""
    rows = list(session.execute(select(Definition.process_id, Definition.version, Definition.deployed_at,
                                       Definition.deployed_by, Definition.sources)
                                .where(Definition.process_id == process_id).order_by(Definition.version)))
    if not rows:
        raise NotFound(f"no deployed process {process_id!r}")
    return rows


def _valid_id(process_id: str) -> None:
    if not _PROCESS_ID.match(process_id):
        raise NotFound(f"no process {process_id!r}")


def _now() -> datetime:
    return CLOCK.now()
