"""What an advance that misses the live-workflow cache pays to get its workflow back.

    python bench/restore.py                      # this tree
    python bench/restore.py --old /work/main     # this tree and another, alternated

Runs one certification lifecycle (granted path, as bench/engine.py (b)) on SQLite and keeps
the instance's stored state after every advance (its size grows over the lifecycle). Then,
for each kept state, measures in CPU time what a cache miss does:
  - ``checkout``: ``Runtime._checkout`` of the instance row as an advance's lock reads it (the
    state column deferred), with an empty live cache: loading and decoding the state column,
    restoring the workflow against the cached spec and the task states the advance's audit
    compares with (SQLite, in this process);
  - ``decode``, for information: the part of that spent in ``json.loads`` of the column's text;
  - for information, the save that follows (``state_to_dict``) on the restored workflow, and
    again once its finished tasks' dicts are cached (what a cache hit's save pays).
Each state is measured ``--rounds`` times; the median per state is reported. With ``--old``,
child processes of the two trees take turns (``--pairs`` times each), so both see the same
machine load; figures are the medians over a tree's runs.
Last line: ``bench-restore: points=<n> kb=<avg> decode_ms=<x> checkout_ms=<y>
save_extra_ms=<z> miss_ms=<checkout + save extra>`` (per advance, averaged over the
lifecycle's points; ``save_extra_ms`` is the save's cost on a restored workflow over its cost
on a cached one), with ``old_…`` figures and ``ratio`` (new miss ÷ old miss) when comparing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent


def snapshots() -> tuple[Any, Any, Any, list[tuple[int, str, str, str]]]:
    """One certification lifecycle; the engine, the definition, the instance, and its stored
    state after every advance as (version, raw JSON, serializer version, status)."""
    from sqlalchemy import text

    from bench.engine import lifecycle, setup
    from certflow.store.db import session_scope
    from certflow.store.models import Instance

    var = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    engine, staff, people = setup(f"sqlite:///{var / 'restore.sqlite'}", var)
    published: list[Any] = []
    engine.publisher = published.extend
    kept: dict[int, tuple[str, str, str]] = {}  # version -> (raw JSON, serializer version, status)

    def keep(instance_id: str) -> None:
        with session_scope() as s:
            row = s.execute(text("SELECT state, serializer_version, version, status FROM instances "
                                 "WHERE id = :id"), {"id": instance_id}).one()
        kept.setdefault(row.version, (row.state, row.serializer_version, row.status))

    def settle(instance_id: str) -> None:
        keep(instance_id)
        while published:
            engine.run_job(published.pop(0).job_id)
            keep(instance_id)

    lifecycle(engine, staff, people, "R1", settle)
    with session_scope() as s:
        row = s.query(Instance).one()
        definition = engine.definition(s, row.definition_id)
    return engine, definition, row, [(v, *kept[v]) for v in sorted(kept)]


def child(rounds: int) -> dict[str, Any]:
    """Runs in the tree under test (its root first on sys.path)."""
    from sqlalchemy import text

    from certflow.engine.runtime import lock_instance
    from certflow.engine.spiff import state_to_dict
    from certflow.store.db import session_scope

    engine, definition, row, kept = snapshots()
    points = []
    for version, raw, serializer_version, status in kept:
        if status != "running":
            continue  # a finished instance is never advanced again
        with session_scope() as s:  # the row as it was at this point (the instance is over)
            s.execute(text("UPDATE instances SET state = :state, serializer_version = :sv, version = :v "
                           "WHERE id = :id"), {"state": raw, "sv": serializer_version, "v": version, "id": row.id})
        decode, checkout, cold, warm = [], [], [], []
        for _ in range(rounds):
            began = time.process_time()
            json.loads(raw)
            decode.append(time.process_time() - began)
            engine._live.clear()
            with session_scope() as s:
                instance = lock_instance(s, row.id)  # as an advance locks it: the state deferred
                began = time.process_time()
                workflow, before = engine._checkout(instance, definition)
                checkout.append(time.process_time() - began)
                s.rollback()
            assert before and workflow.task_tree is not None
            # What the advance's save then pays on a restored workflow (no finished task
            # converted yet), against a save of a workflow the live cache kept.
            began = time.process_time()
            state_to_dict(workflow)
            cold.append(time.process_time() - began)
            began = time.process_time()
            state_to_dict(workflow)
            warm.append(time.process_time() - began)
        points.append({"version": version, "kb": len(raw) / 1024, "tasks": len(before),
                       "decode_ms": statistics.median(decode) * 1000,
                       "checkout_ms": statistics.median(checkout) * 1000,
                       "save_cold_ms": statistics.median(cold) * 1000,
                       "save_warm_ms": statistics.median(warm) * 1000})
    return {"points": points}


def run_tree(tree: Path, rounds: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "--rounds", str(rounds)],
                         cwd=tree, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def summary(runs: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Per lifecycle point, the median over runs of each figure."""
    out = []
    for i, first in enumerate(runs[0]["points"]):
        out.append({
            "version": first["version"], "kb": first["kb"], "tasks": first["tasks"],
            "decode_ms": statistics.median(r["points"][i]["decode_ms"] for r in runs),
            "checkout_ms": statistics.median(r["points"][i]["checkout_ms"] for r in runs),
            "save_cold_ms": statistics.median(r["points"][i]["save_cold_ms"] for r in runs),
            "save_warm_ms": statistics.median(r["points"][i]["save_warm_ms"] for r in runs),
        })
    return out


FIGURES = ("decode_ms", "checkout_ms", "save_cold_ms", "save_warm_ms")


def averages(points: list[dict[str, float]]) -> dict[str, float]:
    """Per advance over the lifecycle's points; ``miss_ms``: what a miss costs more than a hit
    (the checkout, and its save's extra over a save on a workflow the live cache kept)."""
    out = {name: sum(p[name] for p in points) / len(points) for name in ("kb", *FIGURES)}
    out["save_extra_ms"] = out["save_cold_ms"] - out["save_warm_ms"]
    out["miss_ms"] = out["checkout_ms"] + out["save_extra_ms"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=60, help="measurements per state (default 60)")
    ap.add_argument("--old", type=Path, help="another tree (e.g. /work/main) to alternate with")
    ap.add_argument("--pairs", type=int, default=3, help="runs per tree when comparing (default 3)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.rounds)))
        return

    trees = {"new": HERE} if args.old is None else {"old": args.old.resolve(), "new": HERE}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for _ in range(1 if args.old is None else args.pairs):
        for name, tree in trees.items():
            runs[name].append(run_tree(tree, args.rounds))
    results = {name: summary(r) for name, r in runs.items()}
    new = results["new"]
    print(f"{'version':>7} {'kb':>6} {'tasks':>5}  " + "  ".join(
        f"{name}: decode checkout save_cold save_warm" for name in results))
    for i, p in enumerate(new):
        cells = "  ".join(name.rjust(len(name)) + "  " + " ".join(
            f"{results[name][i][f]:{len(f) - 3}.3f}" for f in FIGURES) for name in results)
        print(f"{p['version']:>7} {p['kb']:6.1f} {p['tasks']:>5}  {cells}")
    print(f"CPU ms per advance (median per state over {args.rounds} rounds); load average {os.getloadavg()[0]:.1f}")
    line = "bench-restore: points={} kb={:.1f}".format(len(new), averages(new)["kb"])
    for name in results:
        avg = averages(results[name])
        print(f"{name}: checkout {avg['checkout_ms']:.3f} (json.loads alone {avg['decode_ms']:.3f}) + save extra "
              f"{avg['save_extra_ms']:.3f} = {avg['miss_ms']:.3f} ms per miss")
        prefix = "" if name == "new" else f"{name}_"
        line += "".join(f" {prefix}{f}={avg[f]:.3f}" for f in ("decode_ms", "checkout_ms", "save_extra_ms", "miss_ms"))
    if "old" in results:
        line += f" ratio={averages(new)['miss_ms'] / averages(results['old'])['miss_ms']:.2f}"
    print(line)


if __name__ == "__main__":
    if "--child" in sys.argv:
        sys.path.insert(0, os.environ.get("PYTHONPATH", str(HERE)).split(os.pathsep)[0])
    main()
