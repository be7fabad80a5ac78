"""certflow's own words in the studio's modeler (its properties-panel entries, frontend/studio/
provider.js, conditions.js and terms.js), for bpmn-js's ``translate`` service: English -> the page's language.

They are certflow's texts, so they live in the message catalogue with every other page text
(tests/web/test_i18n.py checks each has its Dutch). bpmn-io's own words (palette, context pad,
the panel's groups) are not ours: their Dutch is in frontend/studio/nl.js, keyed by the English
the libraries pass to ``translate``. A text here wins over one there, so none of these may be
one of bpmn-io's ("Name", "Type", "Value", "Group" ...) unless it should read the same.
"""

from __future__ import annotations

from certflow import i18n
from certflow.i18n import N_

WORDS = (
    # the group and its entries
    N_("certflow"),
    N_("Group (lane)"),
    N_("The lane's name is the group that does the task. Choosing another lane moves the task into it."),
    N_("Group that does this lane's tasks"),
    N_("Form"), N_("Start form"),
    N_("Assignee"),
    N_("An expression naming the person, e.g. mentor; empty: the lane's group picks."),
    N_("Due"),
    N_("An ISO 8601 duration (P14D) or working days (5 werkdagen); =expression to compute it."),
    N_("Show"),
    N_("Case data the task shows, comma-separated (candidate, invoice_number)."),
    N_("Priority"), N_("A whole number from 0 to 100 (default 50)."),
    N_("Assignment rule"),
    N_("Who may start"), N_("Roles, comma-separated (candidate)."),
    N_("Start guard"),
    N_("Handler"), N_("not a handler this server knows"),
    N_("Result variable"),
    N_("required"), N_("default"),
    N_("A Python expression: 'text' in quotes, or a variable name."),
    N_("not a parameter of this handler"),
    N_("The case waits for the mail"),
    N_("A mail goes out without holding the case up. Choose yes when a later step needs it gone first "
       "(the address is erased next)."),
    N_("No, the case goes on"), N_("Yes"),
    N_("Correlation variable"),
    N_("The case variable the message is matched on (invoice_number)."),
    N_("Timer (ISO 8601)"),
    # a gateway's flows (conditions.js)
    N_("Condition"), N_("Condition (Python expression)"),
    N_("The flow is taken when this holds, e.g. verdict == 'approved': case data by name, text in quotes."),
    N_("Give a condition, or make this the default flow: a flow out of this gateway with neither is refused "
       "at deploy."),
    N_("Not a Python expression ({detail})."), N_("Not allowed in a condition: {detail}"),
    N_("Only a flow out of an exclusive or inclusive gateway is taken by its condition: route it through one, "
       "or empty this field."),
    N_("This is the default flow"),
    N_("Taken when no other flow's condition holds; a default flow has no condition of its own."),
    N_("The default flow is now ‘{flow}’: taken when no other flow's condition holds."),
    N_("The default flow is taken when no other flow's condition holds; this gateway has none."),
    # a term's preview (terms.js)
    N_("year"), N_("years"), N_("month"), N_("months"), N_("week"), N_("weeks"), N_("day"), N_("days"),
    N_("hour"), N_("hours"), N_("minute"), N_("minutes"), N_("second"), N_("seconds"),
    N_("working days"), N_("every"), N_("times"),
    N_("not an ISO 8601 duration (P14D, PT4H, P1M) nor working days (10 werkdagen)"),
    N_("computed at run time"),
    N_("or through the next working day when it ends on a day off"),
)


def studio_words(language: str) -> dict[str, str]:
    """The modeler's dictionary of certflow's words for a page in ``language``."""
    return {text: i18n.gettext(language, text) for text in WORDS}
