"""Log lines as JSON, one object per line, with the ids of what they are about.

Every process (web, worker, beat, CLI) calls ``configure_logging`` once at start. Fields:
``ts``, ``level``, ``logger``, ``process`` (web/worker/beat/cli), ``msg``, the context ids
(``request_id``, ``instance_id``, ``task_id``, ``job_id``) where set, ``exc`` on errors, and
anything passed as ``extra=``. ``CERTFLOW_LOG_FORMAT=text`` gives a human-readable line with
the same ids, for a developer's terminal.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

from certflow.observability.context import FIELDS, current

# LogRecord's own attributes: anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


_MARK = "_certflow_handler"


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": self.process,
            "msg": record.getMessage(),
        }
        line.update(current())
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__("%(asctime)s %(levelname)-7s " + process + " %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={v}" for k, v in current().items() if k in FIELDS)
        text = super().format(record)
        return f"{text} [{ids}]" if ids else text


def configure_logging(process: str, fmt: str = "json", level: str = "INFO") -> None:
    """Route every logger (uvicorn's and Celery's too) through one stderr handler. Idempotent;
    leaves handlers it did not install alone (a test runner's capture, say)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process) if fmt == "json" else TextFormatter(process))
    setattr(handler, _MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.task"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("alembic").setLevel(logging.WARNING)  # readiness asks it every few seconds
    # SpiffWorkflow attaches a task's whole data (form answers, message payloads, personal data)
    # to its state-change lines whenever the ``spiff.task`` logger's *own* level is below INFO,
    # and NOTSET counts as below. Those lines cost about half a worker's time per fired timer
    # and the audit table records every transition, so they stay off (WARNING); at DEBUG they
    # are traced, pinned at INFO: with their ids, without the data.
    spiff_level = logging.INFO if level.upper() == "DEBUG" else logging.WARNING
    for name in ("spiff.task", "spiff.workflow"):
        logging.getLogger(name).setLevel(spiff_level)
