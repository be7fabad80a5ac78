"""Deploy from an in-memory sources map (the studio's drafts) is the same check as deploy from a
folder, and the version diff speaks of elements and properties, not of XML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import handlers
from certflow.engine import diagram_diff
from certflow.engine.deploy import _sources, parse_folder, parse_sources, source_problems
from tests.processes.driver import PROCESSES

FOLDER = Path(PROCESSES) / "certification"


def _folder_sources() -> dict[str, str]:
    return _sources(FOLDER, [])


def test_sources_map_parses_exactly_as_the_folder() -> None:
    registry = handlers.load_all()
    from_folder = parse_folder(FOLDER, registry)
    from_map = parse_sources("certification", _folder_sources(), registry)
    assert from_folder.problems == from_map.problems == []
    assert from_map.content_hash == from_folder.content_hash
    assert from_map.elements == from_folder.elements and from_map.spec == from_folder.spec


def test_a_broken_parameter_is_reported_on_its_element() -> None:
    sources = _folder_sources()
    sources["certification.bpmn"] = sources["certification.bpmn"].replace(
        '<spiffworkflow:parameter id="recipient" type="str" value="candidate"/>', "", 1)
    problems = parse_sources("certification", sources, handlers.load_all()).problems
    assert [(p.element, p.message) for p in problems] == [
        ("send_confirmation", "email/send: missing parameter(s) ['recipient']")]


YES = '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">eligible == True</bpmn:conditionExpression>'


@pytest.mark.parametrize("condition, message", [
    ("eligible = True", "condition of sequence flow 'Ja': not a Python expression (invalid syntax)"),
    ("eligible.__class__", "condition of sequence flow 'Ja': attribute '__class__' is not allowed "
                           "(names starting with '_' are reserved) (line 1)"),
    ("__import__('os')", "condition of sequence flow 'Ja': name '__import__' is not allowed "
                         "(names starting with '_' are reserved) (line 1)"),
])
def test_a_condition_that_would_not_run_is_reported_on_its_flow(condition: str, message: str) -> None:
    """Not on its gateway: the studio marks the flow whose condition to fix, and says which."""
    sources = _folder_sources()
    assert YES in sources["certification.bpmn"]
    sources["certification.bpmn"] = sources["certification.bpmn"].replace(YES, YES.replace("eligible == True", condition))
    problems = parse_sources("certification", sources, handlers.load_all()).problems
    assert [(p.file, p.element, p.message) for p in problems] == [("certification.bpmn", "flow_eligible_yes", message)]


def test_a_condition_spiffworkflow_would_ignore_is_refused() -> None:
    """SpiffWorkflow takes every flow out of a task, whatever its condition says."""
    sources = _folder_sources()
    text = sources["certification.bpmn"]
    flow = re.search(r'<bpmn:sequenceFlow id="(\w+)" sourceRef="check_eligibility"[^>]*?/>', text)
    assert flow
    sources["certification.bpmn"] = text.replace(flow.group(0), flow.group(0)[:-2] + ">" + YES + "</bpmn:sequenceFlow>")
    problems = parse_sources("certification", sources, handlers.load_all()).problems
    assert [(p.element, p.message) for p in problems] == [(flow.group(1), (
        f"condition of sequence flow {flow.group(1)!r}: only a flow out of an exclusive or inclusive gateway "
        "is taken by its condition; route it through one"))]


def test_source_problems_name_the_file_and_reason() -> None:
    assert source_problems({"a.bpmn": "<x/>"})[0].message.startswith("not a BPMN 2.0 file")
    assert "no .bpmn file" in source_problems({"forms/a.json": "{}"})[0].message
    assert any("file name" in p.message and p.file == "sub/y.json"
               for p in source_problems({"x.bpmn": "<x/>", "sub/y.json": "{}"}))
    assert source_problems(_folder_sources()) == []


def test_diff_lists_added_removed_and_changed_properties() -> None:
    old = _folder_sources()
    new = dict(old)
    text = old["certification.bpmn"]
    text = text.replace('value="&quot;P5D&quot;"', 'value="&quot;P7D&quot;"', 1)
    text = text.replace("value=\"'certification/application_received'\"", "value=\"'certification/x'\"", 1)
    new["certification.bpmn"] = text
    new["forms/extra.json"] = "{}"
    changes = diagram_diff.diff(old, new)
    by_id = {c.element: c for c in changes.elements}
    assert by_id["check_eligibility"].properties == {"due": ('"P5D"', '"P7D"')}
    assert by_id["send_confirmation"].properties == {
        "parameter template": ("'certification/application_received'", "'certification/x'")}
    assert changes.files == {"certification.bpmn": "changed", "forms/extra.json": "added"}
    assert changes.counts() == {"added": 0, "removed": 0, "changed": 2}
    back = diagram_diff.diff(new, {k: v for k, v in old.items()})
    assert back.files["forms/extra.json"] == "removed"
    assert diagram_diff.diff(old, old).empty


def test_a_priority_that_is_no_number_is_a_problem_not_a_crash() -> None:
    sources = _folder_sources()
    sources["certification.bpmn"] = sources["certification.bpmn"].replace(
        '<spiffworkflow:property name="form" value="eligibility_check.json"/>',
        '<spiffworkflow:property name="form" value="eligibility_check.json"/>'
        '<spiffworkflow:property name="priority" value="high"/>', 1)
    problems = parse_sources("certification", sources, handlers.load_all()).problems
    assert [(p.element, p.message) for p in problems] == [
        ("check_eligibility", "property 'priority' must be a whole number")]


def test_every_problem_the_check_finds_is_said_in_dutch_too() -> None:
    """A process owner on a Dutch page reads the deploy check in Dutch: each problem is a
    ``Message`` (its English text unchanged, for the CLI and the API) whose words the catalogue
    translates. Only the ids, the names in the diagram and Python's own words stay as they are."""
    from certflow.i18n import Message, translate

    sources = _folder_sources()
    text = sources["certification.bpmn"].replace(
        '<spiffworkflow:property name="form" value="eligibility_check.json"/>',
        '<spiffworkflow:property name="priority" value="high"/>'
        '<spiffworkflow:property name="assignment_rule" value="nope"/>', 1)
    text = text.replace('value="&quot;P5D&quot;"', 'value="&quot;soon&quot;"', 1)
    text = text.replace('<spiffworkflow:parameter id="recipient" type="str"',
                        '<spiffworkflow:parameter id="recipent" type="str"', 1)
    text = text.replace("'certification/application_received'", "'certification/nope'", 1)
    text = text.replace('>"P90D"<', '>"P90X"<', 1)
    sources["certification.bpmn"] = text.replace(YES, YES.replace("eligible == True", "eligible.__class__"))
    sources["escalation.json"] = '{"defaults": {"remind_before": "2 dagen", "on_escalation": "later"}}'
    problems = parse_sources("certification", sources, handlers.load_all()).problems
    said = {p.message: translate("nl", p.message) for p in problems}
    assert len(said) == 12, list(said)
    assert all(isinstance(message, Message) for message in said), [m for m in said if not isinstance(m, Message)]
    english = {m for m, dutch in said.items() if dutch == m}
    assert not english, english
    assert said["condition of sequence flow 'Ja': attribute '__class__' is not allowed (names starting with '_' "
                "are reserved) (line 1)"] == ("voorwaarde van volgordestroom 'Ja': attribuut '__class__' is niet "
                                              "toegestaan (namen die met '_' beginnen zijn gereserveerd) (regel 1)")
    assert said["email/send: missing parameter(s) ['recipient']"] == "email/send: ontbrekende parameter(s) ['recipient']"
    assert said["email/send: no template 'certification/nope' in handlers/templates/email"] == \
        "email/send: geen e-mailsjabloon 'certification/nope' in handlers/templates/email"
    assert said["defaults: remind_before: '2 dagen' is neither an ISO 8601 duration (P14D, PT4H, P1M) nor a "
                "number of working days (10 werkdagen)"] == \
        "defaults: remind_before: '2 dagen' is geen ISO 8601-duur (P14D, PT4H, P1M) en geen aantal werkdagen " \
        "(10 werkdagen)"
