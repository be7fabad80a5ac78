"""Script evaluation cost per call: in-process (sandbox guards + tracer only) vs isolated
(an evaluator process under OS CPU/memory limits, certflow.engine.evaluator).

Three kinds of snippet, each against task data shaped like a certification's (~40 keys):
  condition  ``granted == True``: provably cheap, runs in-process in BOTH modes
  expression ``fee * 1.21``: not provably cheap, so isolated by default
  script     a 4-line script task: always isolated by default (the task data goes both ways)
Also the one-off cost of starting an evaluator. Interleaves the modes in rounds so machine
noise hits both alike; prints figures, asserts nothing. Last line:
  bench-sandbox: condition_us=<x> expr_inproc_us=<a> expr_isolated_us=<b> script_inproc_us=<c>
                 script_isolated_us=<d> script_ratio=<d/c> spawn_ms=<s>   (one line)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from certflow.engine import evaluator  # noqa: E402
from certflow.engine.sandbox import SandboxEnvironment  # noqa: E402

SCRIPT = (
    "total = fee + vat\n"
    "reference = f'CMI-{number:05d}'\n"
    "names = [c['name'].upper() for c in competences]\n"
    "due = add_days(today(), 14)\n"
)


def task_data() -> dict[str, Any]:
    data: dict[str, Any] = {f"field_{i}": f"value {i}" * 3 for i in range(30)}
    data.update(granted=True, fee=650, vat=136.5, number=42, candidate="cas",
                address={"street": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht"},
                competences=[{"name": f"competence {i}", "score": i} for i in range(8)])
    return data


def per_call_us(fn: Any, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=300, help="calls per mode per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    fresh = evaluator.Evaluator()  # the one-off cost of an evaluator: start, imports, first call
    evaluator.raise_reply(fresh.call(("eval", "1", {}, {}, None, 1.0), 30.0))  # after its "ready"
    spawn_ms = (time.perf_counter() - started) * 1000
    fresh.kill()
    isolated, local = SandboxEnvironment(), SandboxEnvironment(isolated=False)
    data = task_data()
    isolated.execute("warm = 1", dict(data))  # start the pool's first evaluator
    cases = {
        "condition": (lambda: isolated.evaluate("granted == True", data), None),
        "expr": (lambda: isolated.evaluate("fee * 1.21", data), lambda: local.evaluate("fee * 1.21", data)),
        "script": (lambda: isolated.execute(SCRIPT, dict(data)), lambda: local.execute(SCRIPT, dict(data))),
    }
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, (iso, inproc) in cases.items():
            for label, fn in (("isolated", iso), ("inproc", inproc)):
                if fn is None:
                    continue
                figure = per_call_us(fn, args.n)
                key = f"{name}_{label}"
                best[key] = min(best.get(key, figure), figure)
    for key, value in sorted(best.items()):
        print(f"{key:>20}: {value:9.1f} us/call (best of {args.rounds} rounds of {args.n})")
    print(f"load average: {os.getloadavg()[0]:.1f}")
    print(f"bench-sandbox: condition_us={best['condition_isolated']:.1f} "
          f"expr_inproc_us={best['expr_inproc']:.1f} expr_isolated_us={best['expr_isolated']:.1f} "
          f"script_inproc_us={best['script_inproc']:.1f} script_isolated_us={best['script_isolated']:.1f} "
          f"script_ratio={best['script_isolated'] / best['script_inproc']:.1f} spawn_ms={spawn_ms:.0f}")


if __name__ == "__main__":
    main()
