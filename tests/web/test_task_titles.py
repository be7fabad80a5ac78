"""Every user task of processes/ by the title the pages show: the diagram's (Dutch) name on
Dutch pages; on English pages the English name the diagram gives (property ``name_en``) or
its form title's English half. The six tasks whose name says more than their form's title
("Dossier beoordelen (beoordelaar 1)") had kept their Dutch name on English pages."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from lxml import etree

from certflow.engine import queue
from certflow.engine.dto import TaskView
from certflow.engine.facade import Actor
from certflow.web.pages.rendering import environment
from tests.support import ROOT, Harness

NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
NOW = datetime(2029, 3, 15, 9, tzinfo=timezone.utc)
# Words of the diagrams' Dutch task names that are English words too.
ENGLISH_TOO = {"dossier", "mentor", "assessment", "assessor", "supervisor"}
NAMED_IN_ENGLISH = {  # the six, as the diagram names them in English
    "write_dossier_same": "Write the dossier (same level)",
    "write_dossier_changed": "Write the dossier (changed level)",
    "assess_1": "Assess the dossier (assessor 1)",
    "assess_2": "Assess the dossier (assessor 2)",
    "answer_question_1": "Answer the question (assessor 1)",
    "answer_question_2": "Answer the question (assessor 2)",
}


def _user_tasks() -> dict[tuple[str, str], str]:
    """(process, element id) -> Dutch name, of every user task in processes/, read from the files."""
    found = {}
    for bpmn in sorted((ROOT / "processes").glob("*/*.bpmn")):
        for task in etree.parse(str(bpmn)).iterfind(".//bpmn:userTask", NS):
            found[(bpmn.parent.name, task.get("id"))] = task.get("name")
    return found


def _shown(harness: Harness) -> dict[tuple[str, str], dict[str, str]]:
    """What the pages' ``task`` filter shows for each deployed user task, per language, of a
    queue entry as the engine makes it into a TaskView."""
    harness.engine.deploy(Actor.system())
    templates = {lang: environment(lang).from_string("{{ t|task }}") for lang in ("nl", "en")}
    shown: dict[tuple[str, str], dict[str, str]] = {}
    rows = harness.engine.definitions()
    with harness.engine.session() as session:
        for row in rows:
            definition = harness.engine.definition(session, row["id"])
            for element_id, meta in definition.elements.items():
                if meta.get("type") != "UserTask":
                    continue
                view = queue.view(_entry(row["process_id"], element_id, meta), definition.forms, NOW,
                                  definition.elements)
                shown[(row["process_id"], element_id)] = {
                    lang: template.render(t=view) for lang, template in templates.items()}
    return shown


def _entry(process_id: str, element_id: str, meta: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(
        id="t1", instance_id="i1", process_id=process_id, business_key="K", element_id=element_id,
        title=meta["name"], candidate_group=meta.get("lane"), assignee=None, form=meta.get("form"),
        priority=50, due_at=None, created_at=NOW, context={}, escalation_level=0,
        next_escalation_at=None, escalated_to=None, escalated_at=None)


def test_every_user_task_has_an_english_title_and_its_dutch_name(harness: Harness) -> None:
    tasks = _user_tasks()
    shown = _shown(harness)
    assert set(shown) == set(tasks) and len(tasks) == 26
    dutch = {w for name in tasks.values() for w in re.findall(r"[a-z]+", name.lower())} - ENGLISH_TOO
    listing = "\n".join(f"{p}/{e}: {t['nl']!r} -> {t['en']!r}" for (p, e), t in sorted(shown.items()))
    for key, name in tasks.items():
        assert shown[key]["nl"] == name, listing  # Dutch pages: the diagram's name, unchanged
        english = shown[key]["en"]
        assert english != name and not set(re.findall(r"[a-z]+", english.lower())) & dutch, listing
    assert {e: shown[("recertification_written", e)]["en"] for e in NAMED_IN_ENGLISH} == NAMED_IN_ENGLISH


def test_an_english_name_in_the_diagram_wins_over_the_form_title() -> None:
    view = TaskView(id="t1", instance_id="i1", process_id="p", business_key="K", element_id="e",
                    title="Dossier beoordelen (beoordelaar 1)", candidate_group="assessor",
                    assignee=None, form="assessment.json",
                    form_schema={"title": "Dossier beoordelen / Assess the dossier"}, priority=50,
                    due_at=None, created_at=NOW, overdue=False,
                    title_en="Assess the dossier (assessor 1)")
    render = {lang: environment(lang).from_string("{{ t|task }}").render(t=view) for lang in ("nl", "en")}
    assert render == {"nl": "Dossier beoordelen (beoordelaar 1)", "en": "Assess the dossier (assessor 1)"}
