"""The conditions on a diagram's sequence flows: checked at deploy, flow by flow, and one at a
time while a process owner types one in the studio.

A condition is one Python expression run by the sandbox (``verdict == 'approved'``), so one
that does not parse or that the sandbox refuses would only fail when a case reached its
gateway. Deploy refuses it instead, naming the flow (the studio marks that flow, not its
gateway). SpiffWorkflow reads conditions only on flows out of an exclusive or inclusive
gateway; on any other flow one would be ignored while the diagram looks conditional, so that
is refused too. A missing condition where one is needed SpiffWorkflow's parser reports itself.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from lxml import etree

from certflow.engine.errors import Problem
from certflow.engine.sandbox import ScriptRejected, rejected, validate
from certflow.i18n import Message, N_

BPMN_NS = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
CONDITIONAL_SOURCES = {f"{BPMN_NS}exclusiveGateway", f"{BPMN_NS}inclusiveGateway"}


class ConditionProblem(NamedTuple):
    """Why a condition would not run: it is not Python (``syntax``), or the sandbox refuses
    a construct in it (``refused``); ``detail`` is Python's or the sandbox's own words (the
    sandbox's a ``Message``, translatable where shown)."""

    kind: Literal["syntax", "refused"]
    detail: str

    def __str__(self) -> str:
        return str(self.message)

    @property
    def message(self) -> str:
        """What deploy says of it, as a ``Message``."""
        if self.kind == "syntax":
            return Message(N_("not a Python expression (%(detail)s)"), detail=self.detail)
        return self.detail


def condition_problem(source: str) -> ConditionProblem | None:
    """Why the sandbox would not run ``source`` as a condition; None when it would (or when
    there is none: whether a flow needs one is the diagram's question, not the expression's)."""
    if not source.strip():
        return None
    try:
        validate(source, "eval")
    except ScriptRejected as exc:
        return ConditionProblem("refused", rejected(exc))
    except SyntaxError as exc:
        return ConditionProblem("syntax", str(exc.msg))
    return None


def condition_problems(root: etree._Element, file: str) -> list[Problem]:
    """Every sequence flow in ``root`` whose condition would not run, named by its id and name."""
    tags = {node.get("id"): node.tag for node in root.iter() if node.get("id")}
    found = []
    for flow in root.iter(f"{BPMN_NS}sequenceFlow"):
        expression = flow.find(f"{BPMN_NS}conditionExpression")
        if expression is None or not (expression.text or "").strip():
            continue
        flow_id = flow.get("id")
        flow_name = flow.get("name") or flow_id
        if tags.get(flow.get("sourceRef")) not in CONDITIONAL_SOURCES:
            found.append(Problem(file, flow_id, Message(
                N_("condition of sequence flow %(flow)r: only a flow out of an exclusive or inclusive "
                   "gateway is taken by its condition; route it through one"), flow=flow_name)))
            continue
        problem = condition_problem(expression.text or "")
        if problem is not None:
            found.append(Problem(file, flow_id, Message(N_("condition of sequence flow %(flow)r: %(problem)s"),
                                                        flow=flow_name, problem=problem.message)))
    return found
