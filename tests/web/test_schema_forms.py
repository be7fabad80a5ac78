"""Task forms rendered from their JSON Schema: every form in processes/ draws, posts back as
typed JSON, and refusals land on the field they concern, in words a person can act on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from certflow.web import schema_forms as sf

ROOT = Path(__file__).resolve().parents[2]
FORMS = sorted((ROOT / "processes").glob("*/forms/*.json"))
WIDGETS = {"text", "textarea", "number", "integer", "date", "yesno", "confirm", "radio", "select",
           "checkboxes", "lines", "group"}


def _load(rel: str) -> dict:
    return json.loads((ROOT / "processes" / rel).read_text())


@pytest.mark.parametrize("path", FORMS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_process_form_renders_every_property_with_a_label(path: Path) -> None:
    schema = json.loads(path.read_text())
    drawn = sf.fields(schema, language="nl")
    assert [f.name for f in drawn] == list(schema.get("properties", {}))
    for f in drawn:
        assert f.widget in WIDGETS and f.label
        if f.widget in ("radio", "select"):
            assert [v for v, _ in f.options] == [str(v) for v in schema["properties"][f.name]["enum"]]


def test_labels_follow_the_page_language_and_enum_labels_come_from_the_description() -> None:
    schema = _load("certification/forms/committee_assessment.json")
    nl = {f.name: f for f in sf.fields(schema, language="nl")}
    en = {f.name: f for f in sf.fields(schema, language="en")}
    assert nl["advice"].label == "Advies" and en["advice"].label == "Advice"
    assert nl["advice"].options == [("positive", "positief"), ("negative", "negatief")]
    assert nl["notes"].widget == "textarea" and nl["notes"].required


def test_widgets_for_each_construct() -> None:
    statement = {f.name: f for f in sf.fields(_load("recertification_supervisor/forms/supervisor_statement.json"))}
    assert statement["period_from"].widget == "date"
    assert statement["sessions"].widget == "integer" and statement["sessions"].attrs["min"] == 1
    assert statement["signed"].widget == "confirm"
    assert statement["statement_outcome"].widget == "radio"
    decision = {f.name: f for f in sf.fields(_load("certification/forms/decision.json"))}
    assert decision["granted"].widget == "yesno"
    dossier = {f.name: f for f in sf.fields(_load("certification/forms/dossier.json"))}
    assert dossier["hours_spent"].widget == "number"
    mentor = sf.fields(_load("certification/forms/assign_mentor.json"))[0]
    assert mentor.widget == "text" and mentor.attrs["maxlength"] == 150


NESTED = {
    "type": "object",
    "properties": {
        "topics": {"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]},
                   "title": "Onderwerpen / Topics", "description": "a = Alfa, b = Beta, c = Gamma"},
        "links": {"type": "array", "items": {"type": "string", "minLength": 3}},
        "address": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 80}},
                    "required": ["city"]},
    },
    "required": ["topics", "address"],
}


def test_arrays_and_nested_objects_render_and_post_back() -> None:
    drawn = {f.name: f for f in sf.fields(NESTED, {"address": {"city": "Utrecht"}})}
    assert drawn["topics"].widget == "checkboxes" and drawn["topics"].options[0] == ("a", "Alfa")
    assert drawn["links"].widget == "lines"
    assert drawn["address"].widget == "group" and drawn["address"].children[0].name == "address.city"
    assert drawn["address"].children[0].value == "Utrecht"
    posted = {"topics": ["a", "c"], "links": ["https://x.nl\n\nhttps://y.nl"], "address.city": [" Zwolle "]}
    data = sf.coerce(NESTED, posted)
    assert data == {"topics": ["a", "c"], "links": ["https://x.nl", "https://y.nl"], "address": {"city": "Zwolle"}}
    assert sf.validate(NESTED, data) == {}
    errors = sf.validate(NESTED, sf.coerce(NESTED, {"links": ["x"]}))
    assert errors["address"] == "Vul dit veld in." and errors["links"] == "Gebruik minstens 3 tekens."


def test_posted_text_becomes_typed_json() -> None:
    schema = _load("recertification_supervisor/forms/supervisor_statement.json")
    posted = {"statement_outcome": ["signed"], "statement": ["Groeide sterk"], "period_from": ["1-2-2027"],
              "period_to": ["2029-01-31"], "sessions": ["12"], "signed": ["on"], "signature_name": ["S. Visor"],
              "supervisor_remark": [""]}
    data = sf.coerce(schema, posted)
    assert data["sessions"] == 12 and data["signed"] is True and data["period_from"] == "2027-02-01"
    assert data["supervisor_remark"] == ""
    assert sf.validate(schema, data) == {}
    dossier = _load("certification/forms/dossier.json")
    assert sf.coerce(dossier, {"hours_spent": ["12,5"]})["hours_spent"] == 12.5
    assert sf.coerce(_load("certification/forms/decision.json"), {"granted": ["false"]})["granted"] is False


def test_refusals_land_on_their_field_in_the_page_language() -> None:
    schema = _load("certification/forms/eligibility_check.json")
    # Not eligible without a reason: the conditional rule (if/then) names the remarks field.
    errors = sf.validate(schema, sf.coerce(schema, {"eligible": ["false"], "remarks": [""]}))
    assert errors == {"remarks": "Vul dit veld in."}
    errors = sf.validate(schema, sf.coerce(schema, {}), language="en")
    assert errors == {"eligible": "Choose an answer.", "remarks": "Fill in this field."}
    statement = _load("recertification_supervisor/forms/supervisor_statement.json")
    errors = sf.validate(statement, sf.coerce(statement, {
        "statement_outcome": ["signed"], "sessions": ["twaalf"], "period_from": ["31-02-2027"]}))
    assert errors["sessions"] == "Vul een geheel getal in, bijvoorbeeld 12."
    assert errors["period_from"] == "Vul een datum in als 15-03-2029."
    assert errors["signed"] == "Vink dit aan om te bevestigen."
    # Dates of the right shape that are no date: on the page, and in the engine behind the API.
    errors = sf.validate(statement, {"period_from": "2026-02-30", "period_to": "2020-13-45"})
    assert errors["period_from"] == errors["period_to"] == "Vul een datum in als 15-03-2029."
    from certflow.engine import rules
    from certflow.engine.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        rules.validate_form(statement, {"period_from": "2026-02-30"}, "supervisor_statement")
    assert "period_from" in refused.value.details["fields"]
    dossier = _load("certification/forms/dossier.json")
    errors = sf.validate(dossier, {"knowledge": "k", "tasks": "t", "competences": "c", "hours_spent": -1})
    assert errors == {"hours_spent": "Vul een getal van minstens 0 in."}


def test_refusal_from_the_facade_maps_onto_field_names() -> None:
    assert sf.facade_errors({"address/city": "too long", "(form)": "bad"}) == {
        "address.city": "too long", sf.FORM_LEVEL: "bad"}


def test_case_data_is_labelled_as_the_process_forms_name_it() -> None:
    forms = {"dossier.json": _load("certification/forms/dossier.json"),
             "mentor_review.json": _load("certification/forms/mentor_review.json")}
    assert sf.field_labels(forms, "nl")["knowledge"] == "Kennis"
    assert sf.field_labels(forms, "en")["hours_spent"] == "Hours spent"
