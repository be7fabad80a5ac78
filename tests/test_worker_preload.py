"""The worker's main process loads, before it forks its children, what each child would
otherwise load on its first job (certflow.bootstrap.preload), and connects to nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHECK = """
import sys
from certflow.settings import Settings
from certflow.bootstrap import preload

assert "psycopg" not in sys.modules and "holidays.countries" not in sys.modules
# Nothing listens on port 1: a connection attempt would fail here.
preload(Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"))
assert "psycopg" in sys.modules and "holidays.countries" in sys.modules
print("ok")
"""


def test_the_driver_and_the_holidays_are_loaded_before_the_fork_without_connecting() -> None:
    # A fresh interpreter: this one has imported both long ago.
    done = subprocess.run([sys.executable, "-c", _CHECK], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr
