"""Beat's tick, run as the worker runs it (the task function, in this process)."""

from __future__ import annotations

import gc
import time

import pytest

import certflow.bootstrap
from certflow.bootstrap import build_engine
from certflow.clock import CLOCK, parse_duration
from certflow.settings import get_settings, reset_settings
from certflow.store.db import session_scope
from tests.support import FLOW_DIR, Harness
from worker import app as worker_app
from worker.app import make_app, make_publisher, tick


def test_a_tick_right_after_another_returns_at_once(sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
                                                    request: pytest.FixtureRequest) -> None:
    """A worker that is behind reaches the ticks stacked behind its backlog one after another:
    only the first does the sweep; the next half interval's ticks cost nothing, and after that
    a tick does the work again (here: fires a reminder that fell due meanwhile)."""
    monkeypatch.setenv("CERTFLOW_BEAT_INTERVAL_SECONDS", "2")
    reset_settings()
    monkeypatch.setitem(worker_app._LAST_TICK, "done", float("-inf"))
    monkeypatch.setitem(worker_app._FROZEN, "done", True)  # not this test's process heap
    certflow.bootstrap.engine.cache_clear()  # the tick's engine: this test's database, not an earlier one's
    request.addfinalizer(certflow.bootstrap.engine.cache_clear)
    h = Harness(build_engine(make_publisher(make_app(get_settings()))))
    h.engine.deploy(h.staff, FLOW_DIR)
    first = h.engine.start(h.staff, "flow", "K1", {"key": "K1"}).id
    h.run_jobs()
    assert tick()["timers"] == 0  # nothing due yet: the sweep ran
    with session_scope() as session:
        CLOCK.advance(session, parse_duration("P8D"), allowed=True)  # the review's reminder is due
    stacked = tick()
    assert stacked == {"skipped": 1}
    assert not [j for j in h.jobs() if j.instance_id == first and j.element_id == "remind"]
    time.sleep(1.05)  # half of the 2 s interval
    assert tick()["timers"] == 1
    assert [j.element_id for j in h.jobs() if j.instance_id == first and j.element_id == "remind"] == ["remind"]


def test_a_worker_freezes_what_it_loaded_once(sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
                                             request: pytest.FixtureRequest) -> None:
    """The worker's first job builds the engine; what that loaded is taken out of the cyclic
    collector's passes, once: later jobs freeze nothing more (what they make is collected)."""
    monkeypatch.setattr(worker_app, "_FROZEN", {})
    certflow.bootstrap.engine.cache_clear()
    request.addfinalizer(certflow.bootstrap.engine.cache_clear)
    request.addfinalizer(gc.unfreeze)  # the test process's own heap goes back as it was
    gc.unfreeze()
    eng = worker_app._engine()
    frozen = gc.get_freeze_count()
    assert frozen > 50_000  # modules, SpiffWorkflow, SQLAlchemy's mappings, the engine
    garbage = [[] for _ in range(1000)]
    for item in garbage:
        item.append(item)  # cycles made after start-up
    del garbage, item
    assert worker_app._engine() is eng
    assert gc.get_freeze_count() == frozen


_PRELOAD = """
import gc, sys
from celery.signals import worker_init
import worker.app
from certflow.store import db
assert "handlers.invoicing" not in sys.modules and gc.get_freeze_count() == 0
worker_init.send(sender=None)  # Celery sends it in the main process, before forking the pool
assert "handlers.invoicing" in sys.modules, "the handlers were not imported"
assert gc.get_freeze_count() > 50_000, gc.get_freeze_count()
assert not db._ENGINES, "the parent must not open a pool its children would share"
"""


def test_the_worker_main_process_imports_the_handlers_before_forking(tmp_path: object) -> None:
    """Each prefork child imported the engine's and the handlers' modules on its first job;
    the main process imports them (and freezes them out of the collector) before it forks,
    without opening a database pool."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite"}
    env.pop("REDIS_URL", None)
    done = subprocess.run([sys.executable, "-c", _PRELOAD], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
