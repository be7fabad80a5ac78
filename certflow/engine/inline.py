"""Service tasks a worker runs inside an advance: fewer hops, same guarantees.

A handler declared ``effects="database"`` at registration (certflow.registry) only writes
certflow's own database, and deploy records that on each of its service tasks
(``elements[..]["inline"]``). When a worker advances an instance (running a job, delivering a
result), such tasks are not sent round the broker: the handler runs in a savepoint of the
advance's own transaction, its task completes, the engine continues, and the next
database-only tasks it reaches run the same way, until the instance waits for a person, a
message, a timer or a handler with outside effects, which keeps its own job (an outbox handler,
such as email/send, has its job queued and its task completed at once: certflow.engine.outbox).

Exactly once by construction: the handler's writes and the task's completion commit together
or not at all (and stay keyed by ``instance:task:attempt``, as in a job). A handler that fails
inline is rolled back to its savepoint and left to an ordinary job, which retries with backoff
and ends in an incident, as before. Advances made by web requests never run handlers: the
workers do (the product's design), and the web only writes the job.
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from certflow.engine.projections import ATTEMPT, NOT_BEFORE
from certflow.engine.spiff import SERVICE_PARAMS, AsyncServiceTask, complete_service_task
from certflow.registry import PermanentError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from certflow.engine.runtime import Advance, LoadedDefinition, Runtime
    from certflow.registry import HandlerContext

    _Base = Runtime
else:
    _Base = object

log = logging.getLogger(__name__)

# On a task whose inline run failed: from then on only its job runs it (with backoff).
VIA_JOB = "certflow_via_job"
MAX_INLINE_ROUNDS = 100

Failure = tuple[str, str, bool]  # error, traceback, permanent


class InlineMixin(_Base):
    if TYPE_CHECKING:  # provided by JobsMixin

        def handler_context(self, session: Session, idempotency_key: str, *, instance_id: str = "",
                            business_key: str = "") -> HandlerContext: ...

    def runs_in_advance(self, operator: str) -> bool:
        handler = self.registry.handlers.get(operator)
        return handler is not None and handler.in_transaction

    def _inline(self, definition: "LoadedDefinition", task: Task) -> bool:
        spec = task.task_spec
        declared = definition.elements.get(spec.bpmn_id, {}).get("inline", True)
        return (declared is not False and self.runs_in_advance(spec.operation_name)
                and VIA_JOB not in task.internal_data and NOT_BEFORE not in task.internal_data)

    def run_inline_services(self, advance: "Advance", tasks: list[Task]) -> list[Task]:
        """Run every waiting database-only service task in this advance, and those the
        engine reaches after them. Returns the task walk after the last engine run."""
        tried: set[str] = set()
        for _ in range(MAX_INLINE_ROUNDS):
            due = [t for t in tasks if t.state == TaskState.STARTED and isinstance(t.task_spec, AsyncServiceTask)
                   and str(t.id) not in tried and self._inline(advance.definition, t)]
            if not due:
                break
            for task in due:
                tried.add(str(task.id))
                self._run_inline(advance, task)
            tasks = self.run_engine(advance)
        return tasks

    def _run_inline(self, advance: "Advance", task: Task) -> None:
        spec, tid = task.task_spec, str(task.id)
        attempt = task.internal_data.setdefault(ATTEMPT, 1)
        key = f"{advance.instance.id}:{tid}:{attempt}"
        result, failure = self.call_in_advance(advance, spec.operation_name,
                                               dict(task.internal_data.get(SERVICE_PARAMS, {})), key)
        if failure is not None:
            log.info("%s failed inline (%s); its job will retry it", spec.operation_name, failure[0])
            task.internal_data[VIA_JOB] = True
            advance.audit("service_deferred", tid, spec.bpmn_id, operator=spec.operation_name, error=failure[0])
            return
        complete_service_task(task, result or {})
        advance.audit("service_completed", tid, spec.bpmn_id, operator=spec.operation_name, attempt=attempt,
                      inline=True)

    def call_in_advance(self, advance: "Advance", operator: str, params: dict[str, Any], key: str
                        ) -> tuple[dict[str, Any] | None, Failure | None]:
        """Call a handler in a savepoint of the advance's transaction: its writes commit with
        the advance, or roll back alone when it fails."""
        result, failure, emitted = self.call_in_session(advance.session, operator, params, key,
                                                        advance.instance.id, advance.instance.business_key)
        # Messages it emitted are routed after commit; a big fan-out is left to beat's batches.
        if emitted <= self.settings.inline_drain_limit:
            advance.thrown += emitted
        return result, failure

    def call_in_session(self, session: "Session", operator: str, params: dict[str, Any], key: str,
                        instance_id: str, business_key: str
                        ) -> tuple[dict[str, Any] | None, Failure | None, int]:
        """Call a handler in a savepoint of ``session``'s transaction; returns its result or
        failure, and how many messages it emitted (to route after commit)."""
        ctx = self.handler_context(session, key, instance_id=instance_id, business_key=business_key)
        autoflush, session.autoflush = session.autoflush, True  # handlers expect an ordinary session
        try:
            with session.begin_nested():
                result = self.registry.get(operator)(ctx, params)
                if not isinstance(result, dict):
                    raise PermanentError(f"{operator} returned {type(result).__name__}, not a dict")
        except Exception as exc:
            log.warning("%s (%s) failed", operator, key, exc_info=True)  # the traceback's home
            failure = (str(exc) or type(exc).__name__, traceback.format_exc(), isinstance(exc, PermanentError))
            return None, failure, session.info.pop("emitted", 0)
        finally:
            session.autoflush = autoflush
        return result, None, session.info.pop("emitted", 0)
