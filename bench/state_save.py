"""What writing the whole instance state costs, and what a delta could save at most.

    python bench/state_save.py --n 10

Runs N certification lifecycles through the persisted engine on SQLite in this process, as
bench/engine.py (b) does, and measures, on every save:
  - CPU spent serializing the whole state (``state_to_dict``) and encoding it to JSON (what the
    column write does), against the CPU of the whole lifecycle;
  - the bytes of the whole state, and of the tasks that changed since the previous save of the
    same instance (what a per-task delta would write), plus how many tasks that is.
A delta still has to find what changed and write it; so the CPU share of serializing and
encoding the whole state is the upper bound of what incremental saves could win.
Last line: ``bench-state-save: saves=<n> whole_kb=<x> delta_kb=<y> serialize_share=<s>``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine import lifecycle, setup  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10, help="lifecycles (default 10)")
    args = ap.parse_args()
    var = Path(tempfile.mkdtemp(prefix="bench-state-"))
    engine, staff, people = setup(f"sqlite:///{var / 'state.sqlite'}", var)
    published: list[Any] = []
    engine.publisher = published.extend

    def settle(_instance_id: str) -> None:
        while published:
            engine.run_job(published.pop(0).job_id)

    from certflow.engine import runtime

    whole = runtime.state_to_dict
    stats = {"saves": 0, "cpu_serialize": 0.0, "cpu_json": 0.0, "whole_bytes": 0, "delta_bytes": 0,
             "tasks": 0, "changed": 0}
    previous: dict[str, dict[str, Any]] = {}

    def measured(workflow: Any) -> dict[str, Any]:
        began = time.process_time()
        state = whole(workflow)
        stats["cpu_serialize"] += time.process_time() - began
        began = time.process_time()
        encoded = json.dumps(state)
        stats["cpu_json"] += time.process_time() - began
        root = str(workflow.task_tree.id)
        tasks = dict(state["tasks"])
        for sub in state.get("subprocesses", {}).values():
            tasks.update(sub.get("tasks", {}))
        before = previous.get(root, {})
        changed = {tid: t for tid, t in tasks.items() if before.get(tid) != t}
        rest = {k: v for k, v in state.items() if k not in ("tasks", "subprocesses")}
        stats["saves"] += 1
        stats["whole_bytes"] += len(encoded)
        stats["delta_bytes"] += len(json.dumps(changed)) + len(json.dumps(rest))
        stats["tasks"] += len(tasks)
        stats["changed"] += len(changed)
        previous[root] = tasks
        return state

    runtime.state_to_dict = measured
    began = time.process_time()
    for i in range(args.n):
        lifecycle(engine, staff, people, f"S{i}", settle)
    total = time.process_time() - began
    saves = stats["saves"]
    share = (stats["cpu_serialize"] + stats["cpu_json"]) / total
    print(f"{args.n} lifecycles, {saves} saves, {1000 * total / args.n:.1f} ms CPU per lifecycle")
    print(f"per save: whole state {stats['whole_bytes'] / saves / 1024:.1f} KB ({stats['tasks'] / saves:.0f} tasks); "
          f"changed tasks {stats['changed'] / saves:.1f}, as a delta {stats['delta_bytes'] / saves / 1024:.1f} KB")
    print(f"CPU: serializing {1000 * stats['cpu_serialize'] / saves:.2f} ms + JSON {1000 * stats['cpu_json'] / saves:.2f} ms "
          f"per save = {100 * share:.1f}% of the lifecycle's CPU (the most a delta could save)")
    print(f"bench-state-save: saves={saves} whole_kb={stats['whole_bytes'] / saves / 1024:.1f} "
          f"delta_kb={stats['delta_bytes'] / saves / 1024:.1f} serialize_share={share:.3f}")


if __name__ == "__main__":
    main()
