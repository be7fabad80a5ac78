"""Mutation testing of the modules where a mistake costs money, leaks data or loses work.

Runs mutmut (configured in pyproject.toml, [tool.mutmut]) and prints, per module, how many
mutants the tests killed, how many survived and how many no test reaches, then one line:

    bench-mutation: modules=<n> mutants=<m> score=<pct>

The score counts a mutant as caught when a test failed (killed), it timed out, or the type
check refused it; "no tests" counts against the score. Survivors are listed with
``--survivors``; docs/testing.md names the ones that change nothing a user could notice.

    python bench/mutation.py                # everything in [tool.mutmut] source_paths
    python bench/mutation.py --survivors    # and the surviving mutants' names
    python bench/mutation.py --report-only  # read the last run's results (mutants/)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAUGHT = {"killed", "timeout", "caught by type check"}


def _status(code: int | None) -> str:
    from mutmut.stats import status_by_exit_code

    return str(status_by_exit_code[code])


def results() -> dict[str, Counter[str]]:
    """{module path: Counter(status)} from mutmut's per-file .meta records."""
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        module = str(meta.relative_to(ROOT / "mutants"))[: -len(".meta")]
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        for _name, code in codes.items():
            by_module[module][_status(code)] += 1
    return by_module


def survivors() -> list[str]:
    out = []
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        out += [name for name, code in codes.items() if _status(code) in ("survived", "no tests")]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--survivors", action="store_true", help="list surviving mutants")
    parser.add_argument("--report-only", action="store_true", help="do not run, only report")
    parser.add_argument("--max-children", type=int, default=2)
    args = parser.parse_args()
    started = time.monotonic()
    if not args.report_only:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
        mutmut = Path(sys.executable).with_name("mutmut")
        run = subprocess.run([str(mutmut), "run", "--max-children", str(args.max_children)],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
        if run.returncode not in (0, 1):
            print(run.stderr[-4000:], file=sys.stderr)
            return run.returncode
    by_module = results()
    if not by_module:
        print("no mutmut results found under mutants/", file=sys.stderr)
        return 2
    print(f"{'module':<44} {'mutants':>7} {'killed':>7} {'survived':>8} {'no tests':>8} {'score':>6}")
    total = caught_total = 0
    for module, counts in sorted(by_module.items()):
        n = sum(counts.values())
        caught = sum(counts[s] for s in CAUGHT)
        total, caught_total = total + n, caught_total + caught
        print(f"{module:<44} {n:>7} {caught:>7} {counts['survived']:>8} {counts['no tests']:>8} "
              f"{100 * caught / n:>5.1f}%")
    if args.survivors:
        print("\nsurvivors:")
        for name in survivors():
            print(f"  {name}")
    print(f"\nelapsed {time.monotonic() - started:.0f} s")
    print(f"bench-mutation: modules={len(by_module)} mutants={total} "
          f"score={100 * caught_total / total:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
