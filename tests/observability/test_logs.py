"""Log lines are JSON objects carrying the ids of what they are about, and ids never leak from
one request or job into the next."""

from __future__ import annotations

import json
import logging

from certflow.observability.context import bind, current, log_context
from certflow.observability.logs import JsonFormatter, TextFormatter


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("certflow.test", logging.INFO, __file__, 1, msg, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_json_line_has_the_context_ids_and_the_extras() -> None:
    with log_context(request_id="r-1"):
        bind(instance_id="i-1", task_id="t-1", job_id=7)
        line = json.loads(JsonFormatter("worker").format(_record("job %s", outcome="done")))
    assert line["msg"] == "job %s" and line["process"] == "worker" and line["level"] == "info"
    assert (line["request_id"], line["instance_id"], line["task_id"], line["job_id"]) == ("r-1", "i-1", "t-1", 7)
    assert line["outcome"] == "done"


def test_ids_end_with_their_context_and_bind_outside_one_does_nothing() -> None:
    bind(instance_id="leak")
    assert current() == {}
    with log_context(request_id="a"):
        bind(job_id=1)
    assert current() == {}
    line = json.loads(JsonFormatter("web").format(_record("plain")))
    assert "request_id" not in line and "job_id" not in line


def test_an_exception_is_one_json_line_and_text_format_shows_ids() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    out = JsonFormatter("web").format(record)
    assert "\n" not in out and "ValueError: boom" in json.loads(out)["exc"]
    with log_context(request_id="r-9"):
        assert "request_id=r-9" in TextFormatter("web").format(_record("hello"))
