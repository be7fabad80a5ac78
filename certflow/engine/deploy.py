"""Deploy: parse and validate every process folder, then store what changed as a new version.

Validation happens before anything is written, for all folders at once: a diagram naming an
unknown handler, a missing form, a bad timer or an unsafe script refuses the whole deploy with
the file and element id, so nothing is ever half-deployed. A folder whose files hash the same
as its latest version creates no version. Operators, their parameters, start guards and the
checks on shared files are asked of the ``HandlerRegistry`` the engine was given.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.specs.defaults import ScriptTask, UserTask
from sqlalchemy import func, select
from sqlalchemy import text as sql
from sqlalchemy.orm import Session

from certflow.clock import CLOCK
from certflow import workdays
from certflow.engine import elements as el
from certflow.engine import policies
from certflow.engine.conditions import condition_problems
from certflow.engine.dto import DeployedVersion
from certflow.engine.errors import DeployError, Problem
from certflow.engine.sandbox import ScriptRejected, rejected, validate
from certflow.engine.spiff import AsyncServiceTask, make_parser, spec_to_dict
from certflow.i18n import Message, N_
from certflow.registry import HandlerRegistry
from certflow.store.models import Definition, SharedTable
from certflow.workdays import TermError, parse_term

# No DTDs at all: that closes external entities, entity expansion bombs and network fetches.
SAFE_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
)


@dataclass
class Bundle:
    """One process folder, parsed and checked, ready to store."""

    process_id: str
    name: str
    folder: Path
    sources: dict[str, str]
    content_hash: str
    spec: dict[str, Any]
    forms: dict[str, Any]
    elements: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)
    registry: HandlerRegistry = field(default_factory=HandlerRegistry)


def read_xml(path: Path | None, text: str) -> etree._Element:
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ValueError(Message(N_("DOCTYPE/ENTITY declarations are not allowed")))
    return etree.fromstring(text.encode("utf-8"), SAFE_PARSER)


def _sources(folder: Path, problems: list[Problem]) -> dict[str, str]:
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix in {".bpmn", ".dmn", ".json"}
    )
    sources = {}
    for path in files:
        name = str(path.relative_to(folder))
        try:
            sources[name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(name, None, Message(
                N_("not UTF-8 text (byte %(byte)s at offset %(offset)s); save the file as UTF-8"),
                byte=f"0x{exc.object[exc.start]:02x}", offset=exc.start)))
    return sources


BPMN_NS = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"


def flow_problems(root: etree._Element, file: str) -> list[Problem]:
    """Sequence flows whose source or target is not an element of the same process
    (SpiffWorkflow would report those as "perhaps a form has the same ID?")."""
    found = []
    for process in root.iter(f"{BPMN_NS}process", f"{BPMN_NS}subProcess"):
        ids = {child.get("id") for child in process}
        for flow in process.findall(f"{BPMN_NS}sequenceFlow"):
            for end in ("sourceRef", "targetRef"):
                ref = flow.get(end)
                if ref not in ids:
                    found.append(Problem(file, flow.get("id"), Message(
                        N_("sequence flow %(flow)r: %(end)s %(ref)r is not an element of process "
                           "%(process_id)r"), flow=flow.get("id"), end=end, ref=ref,
                        process_id=process.get("id"))))
    return found


def _hash(sources: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name, text in sorted(sources.items()):
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


def _load_forms(sources: dict[str, str], problems: list[Problem]) -> dict[str, Any]:
    forms: dict[str, Any] = {}
    for name, text in sources.items():
        if not name.startswith("forms/"):
            continue
        try:
            schema = json.loads(text)
            Draft202012Validator.check_schema(schema)
        except (json.JSONDecodeError, SchemaError) as exc:
            problems.append(Problem(name, None, Message(N_("not a valid JSON Schema: %(error)s"),
                                                        error=str(exc).split("\n")[0])))
            continue
        forms[name.removeprefix("forms/")] = schema
    return forms


def parse_folder(folder: Path, registry: HandlerRegistry | None = None) -> Bundle:
    """Parse and check one process folder; problems are collected, not raised. Without a
    registry every operator and guard the diagram names is reported unknown."""
    problems: list[Problem] = []
    sources = _sources(folder, problems)
    bundle = parse_sources(folder.name, sources, registry)
    bundle.folder = folder
    bundle.problems[:0] = problems
    return bundle


# What a sources map given from outside a folder (the studio's drafts and uploads) may hold.
MAX_SOURCE_CHARS = 2_000_000
MAX_SOURCES_CHARS = 5_000_000
MAX_SOURCE_FILES = 200
_SOURCE_NAME = re.compile(r"^(forms/)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,120}\.(bpmn|dmn|json)$")


def source_problems(sources: dict[str, str]) -> list[Problem]:
    """What makes a sources map unfit to parse at all: odd file names, too much text, a DTD,
    a .bpmn that is not BPMN. Reported per file before any parsing is tried."""
    if len(sources) > MAX_SOURCE_FILES:
        return [Problem("(sources)", None, Message(N_("too many files (%(count)s, at most %(limit)s)"),
                                                   count=len(sources), limit=MAX_SOURCE_FILES))]
    total = sum(len(t) for t in sources.values() if isinstance(t, str))
    if total > MAX_SOURCES_CHARS:
        return [Problem("(sources)", None, too_large(total, MAX_SOURCES_CHARS))]
    found: list[Problem] = []
    for name, text in sorted(sources.items()):
        if not isinstance(text, str):
            found.append(Problem(str(name), None, Message(N_("not text"))))
        elif not _SOURCE_NAME.match(name):
            found.append(Problem(name, None, Message(N_("file name not allowed (a .bpmn, .dmn or .json "
                                                        "file, forms/ as the only folder)"))))
        elif len(text) > MAX_SOURCE_CHARS:
            found.append(Problem(name, None, too_large(len(text), MAX_SOURCE_CHARS)))
        elif name.endswith((".bpmn", ".dmn")):
            found += _xml_problems(name, text)
    if not any(n.endswith(".bpmn") for n in sources):
        found.append(Problem("(sources)", None, Message(N_("no .bpmn file"))))
    return found


def too_large(size: int, limit: int) -> Message:
    """A text over its limit, both counted in characters."""
    return Message(N_("too large (%(size)s characters, at most %(limit)s)"), size=f"{size:,}", limit=f"{limit:,}")


def not_xml(exc: Exception) -> Message:
    """XML that does not parse: the parser's words (English), or ours for a DTD refused."""
    return Message(N_("not valid XML: %(error)s"), error=error_text(exc))


def error_text(exc: Exception) -> str:
    """An exception's text, kept translatable when it was raised with a ``Message``."""
    first = exc.args[0] if len(exc.args) == 1 else None
    return first if isinstance(first, Message) else str(exc)


def _xml_problems(name: str, text: str) -> list[Problem]:
    try:
        root = read_xml(Path(name), text)
    except (etree.XMLSyntaxError, ValueError) as exc:
        return [Problem(name, None, not_xml(exc))]
    expected = BPMN_NS + "definitions" if name.endswith(".bpmn") else None
    if expected and root.tag != expected:
        return [Problem(name, None, Message(N_("not a BPMN 2.0 file (root element %(root)r, expected "
                                               "bpmn:definitions)"), root=root.tag))]
    return []


def parse_sources(name: str, sources: dict[str, str], registry: HandlerRegistry | None = None) -> Bundle:
    """Parse and check one process given as its folder's files ``{relative path: text}``
    (what ``Definition.sources`` stores); ``name`` stands for the folder's name."""
    problems: list[Problem] = []
    conditions: list[Problem] = []  # reported beside SpiffWorkflow's own, not instead of them
    forms = _load_forms(sources, problems)
    parser = make_parser()
    for file, text in sources.items():
        if file.endswith((".bpmn", ".dmn")):
            try:
                root = read_xml(Path(file), text)
                if file.endswith(".bpmn"):
                    conditions += condition_problems(root, file)
                    dangling = flow_problems(root, file)
                    problems.extend(dangling)
                    if not dangling:
                        parser.add_bpmn_xml(etree.ElementTree(root), filename=file)
                else:
                    parser.add_dmn_xml(root, filename=file)
            except (etree.XMLSyntaxError, ValueError) as exc:
                problems.append(Problem(file, None, not_xml(exc)))
            except ValidationException as exc:
                problems.append(Problem(file, getattr(exc, "id", None), _spiff_message(exc)))
    bundle = Bundle(name, name, Path(name), dict(sources), _hash(sources), {}, forms, {}, problems,
                    registry or HandlerRegistry())
    if not problems:
        _build_spec(parser, bundle)
    bundle.problems += conditions
    return bundle


def _spiff_message(exc: Exception) -> str:
    return str(exc).split("\n")[0]


def _build_spec(parser: Any, bundle: Bundle) -> None:
    bpmn_file = next((n for n in bundle.sources if n.endswith(".bpmn")), None)
    if bpmn_file is None:
        bundle.problems.append(Problem(bundle.folder.name, None, Message(N_("no .bpmn file in the folder"))))
        return
    ids = parser.get_process_ids()
    process_id = bundle.folder.name if bundle.folder.name in ids else (ids[0] if len(ids) == 1 else None)
    if process_id is None:
        bundle.problems.append(
            Problem(bpmn_file, None, Message(N_("expected one executable process (or one with id %(folder)r), "
                                                "found %(found)s"), folder=bundle.folder.name, found=str(sorted(ids))))
        )
        return
    try:
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except (ValidationException, SpiffWorkflowException) as exc:
        bundle.problems.append(Problem(bpmn_file, getattr(exc, "id", None), _spiff_message(exc)))
        return
    bundle.process_id = process_id
    bundle.name = spec.description or process_id
    bundle.elements = {}
    for task_spec in [*spec.task_specs.values(), *(t for s in subprocess_specs.values() for t in s.task_specs.values())]:
        _check_element(task_spec, bundle, bpmn_file)
    bundle.problems += policies.attach(bundle.folder.name, bundle.sources, bundle.elements)
    bundle.spec = spec_to_dict(spec, subprocess_specs)


def _check_script(bundle: Bundle, file: str, element: str, source: str | None, mode: str, what: str) -> None:
    """``what`` names the script (``Message``s below: "prescript", "property 'due'")."""
    if source is None or source.strip() == "":
        return
    try:
        validate(source, mode)
    except ScriptRejected as exc:
        bundle.problems.append(Problem(file, element, Message("%(what)s: %(reason)s", what=what,
                                                              reason=rejected(exc))))
    except SyntaxError as exc:
        bundle.problems.append(Problem(file, element, Message(N_("%(what)s does not parse: %(error)s"),
                                                              what=what, error=exc.msg)))


def _check_element(task_spec: Any, bundle: Bundle, file: str) -> None:
    element = getattr(task_spec, "bpmn_id", None)
    if element is None:
        return  # SpiffWorkflow's own helper specs (joins, splits)
    meta = el.describe(task_spec)
    bundle.elements[element] = meta
    if not el.valid_priority(el.properties(task_spec).get("priority")):
        bundle.problems.append(Problem(file, element, Message(N_("property 'priority' must be a whole number"))))
    for when, what in (("prescript", Message(N_("prescript"))), ("postscript", Message(N_("postscript")))):
        _check_script(bundle, file, element, getattr(task_spec, when, None), "exec", what)
    if isinstance(task_spec, ScriptTask):
        _check_script(bundle, file, element, task_spec.script, "exec", Message(N_("script")))
    if isinstance(task_spec, UserTask):
        _check_user_task(task_spec, meta, bundle, file, element)
    if isinstance(task_spec, AsyncServiceTask):
        _check_service_task(task_spec, bundle, file, element)
    if meta.get("type") == "StartEvent" and meta.get("form") and meta["form"] not in bundle.forms:
        bundle.problems.append(Problem(file, element, Message(N_("start form %(form)r not found in forms/"),
                                                              form=meta["form"])))
    guards = bundle.registry.guards
    if meta.get("guard") and meta["guard"] not in guards:
        bundle.problems.append(Problem(file, element, Message(N_("unknown start guard %(guard)r (known: %(known)s)"),
                                                              guard=meta["guard"], known=known(guards))))
    definition = getattr(task_spec, "event_definition", None)
    if isinstance(definition, TimerEventDefinition):
        _check_timer(definition, bundle, file, element)
    if isinstance(definition, MessageEventDefinition) and not definition.name:
        bundle.problems.append(Problem(file, element, Message(N_("message event without a message"))))


def _check_user_task(task_spec: Any, meta: dict[str, Any], bundle: Bundle, file: str, element: str) -> None:
    if not meta.get("lane"):
        bundle.problems.append(Problem(file, element, Message(
            N_("user task outside any lane (the lane is its candidate group)"))))
    form = meta.get("form")
    if not form:
        bundle.problems.append(Problem(file, element, Message(N_("user task without a 'form' property"))))
    elif form not in bundle.forms:
        bundle.problems.append(Problem(file, element, Message(N_("form %(form)r not found in forms/"), form=form)))
    for prop in ("assignee", "due"):
        _check_script(bundle, file, element, meta.get(prop), "eval",
                      Message(N_("property %(property)r"), property=prop))
    rule = meta.get("assignment_rule")
    if rule and rule not in bundle.registry.conflict_rules:
        bundle.problems.append(Problem(file, element, Message(
            N_("unknown assignment rule %(rule)r (known: %(known)s)"), rule=rule,
            known=known(bundle.registry.conflict_rules))))
    if rule and not meta.get("assignee"):
        bundle.problems.append(Problem(file, element, Message(
            N_("an assignment rule needs an 'assignee' property"))))
    if meta.get("due"):
        literal = _literal(meta["due"])
        if literal is not None:
            try:
                parse_term(literal)
            except TermError as exc:
                bundle.problems.append(Problem(file, element, Message(N_("due: %(reason)s"),
                                                                      reason=error_text(exc))))


def _has_boundary_events(task_spec: Any) -> bool:
    return any(isinstance(spec, BoundaryEventSplit) for spec in task_spec.inputs)


def _check_service_task(task_spec: AsyncServiceTask, bundle: Bundle, file: str, element: str) -> None:
    registry = bundle.registry
    operator = task_spec.operation_name
    handler = registry.handlers.get(operator)
    if handler is None:
        bundle.problems.append(Problem(file, element, Message(N_("unknown handler %(handler)r (known: %(known)s)"),
                                                              handler=operator, known=", ".join(registry))))
        return
    # Decided here, from the handler's declaration: a worker runs a database-only handler
    # inside the advance that reaches its task (certflow.engine.inline); an outbox handler's
    # task completes as its job is queued (certflow.engine.outbox), unless the diagram
    # attached a boundary event to it: then the process waits for the handler, so a timer or
    # an error caught there can still interrupt it; or the diagram says the process waits
    # (property ``wait``): a step after it needs the effect to have happened first.
    wait = el.properties(task_spec).get("wait", "false").strip().lower()
    if wait not in ("true", "false"):
        bundle.problems.append(Problem(file, element, Message(N_("property 'wait' must be true or false"))))
    bundle.elements[element]["inline"] = handler.in_transaction
    bundle.elements[element]["detached"] = (handler.detached and wait != "true"
                                            and not _has_boundary_events(task_spec))
    given = set(task_spec.operation_params)
    fields = set(handler.input_model.model_fields)
    missing = fields - handler.optional - given
    unknown = given - fields
    if missing:
        bundle.problems.append(Problem(file, element, Message(N_("%(handler)s: missing parameter(s) %(names)s"),
                                                              handler=operator, names=str(sorted(missing)))))
    if unknown:
        bundle.problems.append(Problem(file, element, Message(N_("%(handler)s: unknown parameter(s) %(names)s"),
                                                              handler=operator, names=str(sorted(unknown)))))
    for name, param in task_spec.operation_params.items():
        _check_script(bundle, file, element, param["value"], "eval",
                      Message(N_("parameter %(parameter)r"), parameter=name))
    check = registry.deploy_checks.get(operator)
    if check is not None:
        literals = {name: _literal_value(param["value"]) for name, param in task_spec.operation_params.items()}
        for message in check({k: v for k, v in literals.items() if v is not _NOT_LITERAL}):
            bundle.problems.append(Problem(file, element, message))


_NOT_LITERAL = object()


def _literal_value(expression: str) -> Any:
    try:
        return ast.literal_eval(expression)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NOT_LITERAL


def _literal(expression: str) -> str | None:
    text = expression.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return None


def known(names: Any) -> str:
    """What a diagram may name instead, for "(known: ...)": the names, or "none"."""
    return ", ".join(sorted(names)) or Message(N_("none"))


def _check_timer(definition: TimerEventDefinition, bundle: Bundle, file: str, element: str) -> None:
    expression = definition.expression or ""
    _check_script(bundle, file, element, expression, "eval", Message(N_("timer expression")))
    literal = _literal(expression)
    if literal is None:
        return  # computed from data at run time; syntax checked above
    try:
        if isinstance(definition, CycleTimerEventDefinition):
            TimerEventDefinition.parse_iso_recurring_interval(literal)
        else:
            TimerEventDefinition.parse_time_or_duration(literal)
    except Exception:
        bundle.problems.append(Problem(file, element, Message(
            N_("timer %(expression)s is not an ISO 8601 date, duration or cycle"), expression=expression)))


def discover(processes_dir: Path) -> list[Path]:
    return sorted(p for p in processes_dir.iterdir() if p.is_dir() and any(p.glob("*.bpmn")))


def deploy(session: Session, processes_dir: Path, actor: str, registry: HandlerRegistry,
           only: list[str] | None = None) -> list[DeployedVersion]:
    """Validate every process folder, then write new versions. All or nothing."""
    stored = [store_bundle(session, bundle, actor) for bundle in validated(processes_dir, registry, only)]
    return stored + _store_shared(session, processes_dir, actor)


def validated(processes_dir: Path, registry: HandlerRegistry, only: list[str] | None = None) -> list[Bundle]:
    """Every (or each named) process folder parsed and checked; DeployError lists all problems."""
    folders = [f for f in discover(processes_dir) if only is None or f.name in only]
    if not folders:
        raise DeployError([Problem(str(processes_dir), None, Message(N_("no process folders with a .bpmn file")))])
    bundles = [parse_folder(folder, registry) for folder in folders]
    problems = [p for b in bundles for p in b.problems] + shared_problems(processes_dir, registry)
    if problems:
        raise DeployError(problems)
    return bundles


SHARED_TABLES = ("fees.dmn", "vat.dmn")


def _store_shared(session: Session, processes_dir: Path, actor: str) -> list[DeployedVersion]:
    """Version the shared tables (validated above) like definitions: new content, new version."""
    done = []
    for name in SHARED_TABLES:
        path = processes_dir / "shared" / name
        if not path.exists():
            continue
        done.append(store_shared_table(session, name, path.read_text(encoding="utf-8"), actor))
    return done


_DEPLOY_LOCK = sql("SELECT pg_advisory_xact_lock(hashtext('certflow:deploy'))")


def take_deploy_lock(session: Session) -> None:
    """Deploys take turns, until the deploying transaction ends: each reads the latest versions
    and writes the next numbers, and two at once (a pipeline's deploy started twice, a studio
    deploy beside the files') wrote the same numbers; for a process or table never deployed
    there is no row to lock, so the lock is a named one (PostgreSQL's transaction advisory
    lock). Taken again in one transaction it is held once more, harmlessly. SQLite needs none:
    its writers are serialized (BEGIN IMMEDIATE, certflow.store.db). Unsafe if something writes
    ``definitions`` or ``shared_tables`` without ``store_bundle``/``store_shared_table``."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_DEPLOY_LOCK)


def store_shared_table(session: Session, name: str, content: str, actor: str) -> DeployedVersion:
    """``content`` as the table's next version (or its latest, unchanged). Back to an earlier
    version's text (a studio deploy reverted, or the files deployed after one): that row is
    made the newest again under the next number, as (name, content_hash) is stored once."""
    take_deploy_lock(session)
    digest = hashlib.sha256(content.encode()).hexdigest()
    latest = session.execute(select(SharedTable).where(SharedTable.name == name)
                             .order_by(SharedTable.version.desc()).limit(1)).scalar_one_or_none()
    if latest is not None and latest.content_hash == digest:
        return DeployedVersion(f"shared/{name}", latest.version, latest.id, created=False)
    version = (latest.version if latest else 0) + 1
    row = session.scalars(select(SharedTable).where(SharedTable.name == name,
                                                    SharedTable.content_hash == digest)).first()
    if row is None:
        row = SharedTable(name=name, content_hash=digest, content=content)
        session.add(row)
    row.version, row.deployed_at, row.deployed_by = version, CLOCK.now(), actor
    session.flush()
    return DeployedVersion(f"shared/{name}", row.version, row.id, created=True)


def shared_problems(processes_dir: Path, registry: HandlerRegistry) -> list[Problem]:
    """Checks on what several processes share (fee and VAT tables, email templates), each
    registered by the handlers that use it."""
    found: list[Problem] = []
    if not (processes_dir / "shared").is_dir():
        return found
    for source, check in sorted(registry.shared_checks.items()):
        found += [Problem(source, None, message) for message in check(processes_dir)]
    found += [Problem("shared", None, message) for message in workdays.check_file(processes_dir)]
    return found


def store_bundle(session: Session, bundle: Bundle, actor: str) -> DeployedVersion:
    take_deploy_lock(session)
    latest = session.execute(
        select(Definition).where(Definition.process_id == bundle.process_id)
        .order_by(Definition.version.desc()).limit(1).with_for_update()
    ).scalar_one_or_none()
    if latest is not None and latest.content_hash == bundle.content_hash:
        return DeployedVersion(bundle.process_id, latest.version, latest.id, created=False)
    version = (session.scalar(select(func.max(Definition.version)).where(
        Definition.process_id == bundle.process_id)) or 0) + 1
    row = Definition(
        process_id=bundle.process_id, version=version, name=bundle.name,
        content_hash=bundle.content_hash, sources=bundle.sources, spec=bundle.spec,
        forms=bundle.forms, elements=bundle.elements, deployed_at=CLOCK.now(), deployed_by=actor,
    )
    session.add(row)
    session.flush()
    return DeployedVersion(bundle.process_id, version, row.id, created=True)


def plan(session: Session, processes_dir: Path, registry: HandlerRegistry) -> list[tuple[str, str]]:
    """What ``deploy`` would do, writing nothing: (process or shared table, new | changed |
    unchanged). Raises DeployError with every problem, exactly as ``deploy`` would."""
    bundles = validated(processes_dir, registry)
    found = []
    for bundle in bundles:
        latest = session.scalar(select(Definition.content_hash).where(Definition.process_id == bundle.process_id)
                                .order_by(Definition.version.desc()).limit(1))
        found.append((bundle.process_id, _compare(latest, bundle.content_hash)))
    for name in SHARED_TABLES:
        path = processes_dir / "shared" / name
        if path.exists():
            latest = session.scalar(select(SharedTable.content_hash).where(SharedTable.name == name)
                                    .order_by(SharedTable.version.desc()).limit(1))
            digest = hashlib.sha256(path.read_text(encoding="utf-8").encode()).hexdigest()
            found.append((f"shared/{name}", _compare(latest, digest)))
    return found


def _compare(deployed: str | None, current: str) -> str:
    return "new" if deployed is None else "unchanged" if deployed == current else "changed"
