"""The embedded broker (kombu's SQL transport on one SQLite file) is shared by several processes
that start together: worker, beat and the web app each create its tables and the queue row on
first use. None of them may die of the other's insert ("UNIQUE constraint failed:
kombu_queue.name", the cause of a flaky kill-the-worker test)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection

PROCESSES = 6
ROUNDS = 3


def _declare(url: str, transport: str, barrier: Any, queue: str) -> None:
    with Connection(url, transport=transport) as conn:
        channel = conn.channel()
        barrier.wait(timeout=60)  # every process looks for the queue row at the same moment
        channel.queue_declare(queue)
        channel.close()


def _race(tmp_path: Path, transport: str) -> list[int]:
    ctx = multiprocessing.get_context("fork")
    codes: list[int] = []
    for round_ in range(ROUNDS):
        url = f"sqlite:///{tmp_path / f'broker-{round_}.sqlite'}"
        barrier = ctx.Barrier(PROCESSES)
        procs = [ctx.Process(target=_declare, args=(url, transport, barrier, "certflow"))
                 for _ in range(PROCESSES)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(120)
        codes += [proc.exitcode if proc.exitcode is not None else -1 for proc in procs]
    return codes


@pytest.mark.timeout(300)
def test_processes_starting_together_share_one_queue_row(tmp_path: Path) -> None:
    codes = _race(tmp_path, "worker.app:EmbeddedTransport")
    assert codes == [0] * (PROCESSES * ROUNDS)
    import sqlite3
    for round_ in range(ROUNDS):
        rows = sqlite3.connect(tmp_path / f"broker-{round_}.sqlite").execute(
            "SELECT name FROM kombu_queue").fetchall()
        assert rows == [("certflow",)]
