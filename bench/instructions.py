"""Instructions per certification lifecycle: (a) bare SpiffWorkflow and (b) the persisted
engine, as in bench/engine.py, counted by valgrind's callgrind instead of timed.

    python bench/instructions.py            # 10 lifecycles per mode, after 3 untimed
    python bench/instructions.py --n 20

bench/engine.py's b/a divides two clock readings; on a shared machine they scatter (b/a read
5.0, 6.9 and 5.6 in three runs within minutes on an idle 2-core machine). The instructions a
lifecycle executes do not depend on what else the machine is doing: the same code gives the
same count, so this is the figure to compare two versions of the engine by. It is not a time:
an instruction of (b) costs more on average than one of (a) (more code and data than the
caches hold: SQLAlchemy, SQLite, JSON), so b/a by instructions is below b/a by time.

Each mode runs in its own process under ``valgrind --tool=callgrind``, both at once. The
untimed lifecycles run first (imports, compiled expressions, caches); counting is switched on
(``callgrind_control -i on``) for the N lifecycles and off after them; string hashing is
seeded the same in every run (PYTHONHASHSEED=0), so dictionaries are laid out alike. Needs valgrind
(Debian's package). Asserts nothing about the counts.
Last line: ``bench-instructions: a_instr=<n> b_instr=<n> b/a=<r>`` (instructions per lifecycle)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _count(on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                   check=True, stdout=subprocess.DEVNULL)


def child(mode: str, n: int, warm: int) -> None:
    """Inside valgrind: ``warm`` lifecycles uncounted, then ``n`` counted."""
    from bench.engine import bare_runner, persisted_runner

    one = bare_runner() if mode == "a" else persisted_runner()[1]
    for i in range(warm):
        one(f"{mode.upper()}W{i}")
    _count(True)
    for i in range(n):
        one(f"{mode.upper()}{i}")
    _count(False)


def instructions(out: Path) -> int:
    """The total of the instructions callgrind counted (its ``totals:`` line)."""
    for line in out.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"{out}: no totals line")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10, help="counted lifecycles per mode (default 10)")
    ap.add_argument("--warm", type=int, default=3, help="uncounted lifecycles before them (default 3)")
    ap.add_argument("--child", choices=["a", "b"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.n, args.warm)
        return
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        sys.exit("bench/instructions.py needs valgrind (apt-get install valgrind)")
    work = Path(tempfile.mkdtemp(prefix="bench-instr-"))
    runs = {}
    for mode in ("a", "b"):
        out = work / f"callgrind.{mode}"
        runs[mode] = (out, subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
             sys.executable, __file__, "--child", mode, "--n", str(args.n), "--warm", str(args.warm)],
            cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "0"}, stdout=subprocess.DEVNULL, stderr=open(work / f"valgrind.{mode}.log", "wb")))
    per: dict[str, float] = {}
    for mode, (out, proc) in runs.items():
        if proc.wait() != 0:
            sys.exit(f"({mode}) failed under valgrind; see {work / f'valgrind.{mode}.log'}")
        per[mode] = instructions(out) / args.n
    print(f"(a) bare SpiffWorkflow, in memory:        {per['a'] / 1e6:8.1f} M instructions/lifecycle")
    print(f"(b) persisted engine, SQLite, 1 process:  {per['b'] / 1e6:8.1f} M instructions/lifecycle   "
          f"b/a={per['b'] / per['a']:.2f}")
    shutil.rmtree(work)
    print(f"bench-instructions: a_instr={per['a']:.0f} b_instr={per['b']:.0f} b/a={per['b'] / per['a']:.3f}")


if __name__ == "__main__":
    main()
