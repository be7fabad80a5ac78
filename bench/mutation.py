"""Mutation testing of the modules where a mistake costs money, leaks data or loses work.

Runs mutmut (common settings in pyproject.toml, [tool.mutmut]) on each module, two side by side
(``--parallel``; the longest first), each with only the tests that pin that module (``MODULES`` below), in its own work directory
``var/mutation/<module>/`` so a run is fast and its results stay apart. Prints, per module, how
many mutants the tests killed, how many survived and how many no test reaches, then one line:

    bench-mutation: modules=<n> mutants=<m> score=<pct>

The score counts a mutant as caught when a test failed (killed), it timed out (or was killed at
its time limit), or the type check refused it; "no tests" counts against the score, and so does
"not run" (a run that was cut short: the table says how many). Survivors are listed with
``--survivors``; docs/testing.md names the ones that change nothing a user could notice.

    python -m bench.mutation                       # every module, from scratch
    python -m bench.mutation --module camt         # one module (a part of its path will do)
    python -m bench.mutation --survivors           # and the surviving mutants' names
    python -m bench.mutation --report-only         # read the last run's results
    python -m bench.mutation --keep                # reuse cached verdicts (mutmut's cache)

Run it niced on a shared machine: ``nice -n 19 python -m bench.mutation``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "mutation"
CAUGHT = {"killed", "timeout", "segfault", "caught by type check"}  # segfault: killed at its limit
# What a work directory links to (mutmut copies it into its mutants/ tree).
LINKED = ["certflow", "handlers", "worker", "processes", "tests", "alembic.ini"]

# Module -> the tests that pin it. Only these run (mutmut then picks, per mutant, those of
# them that reach the mutated function), which keeps each module's run short.
SLOW_NUMBERING = "tests/handlers/test_invoicing.py::test_numbers_stay_gapless_under_concurrent_workers"
MODULES: dict[str, list[str]] = {
    "certflow/engine/policies.py": [
        "tests/engine/test_escalation_policies.py",
        "tests/engine/test_escalation.py::test_deploy_refuses_a_bad_policy_with_file_and_element"],
    "certflow/engine/escalation.py": [
        "tests/engine/test_escalation_rules.py", "tests/engine/test_escalation.py",
        "tests/engine/test_escalation_query.py", "tests/web/test_escalations_api.py"],
    "certflow/workdays.py": [
        "tests/test_workdays.py", "tests/engine/test_escalation_policies.py",
        "tests/engine/test_timer_workdays.py::test_deadline_and_working_day_skip_weekends_and_holidays"],
    "certflow/engine/rules.py": [
        "tests/engine/test_permission_rules.py", "tests/engine/test_queue_rules.py",
        "tests/engine/test_definition_rules.py",
        *(f"tests/engine/test_runtime.py::{t}" for t in (
            "test_deploy_versions_and_unchanged_redeploy",
            "test_complete_validates_the_form_and_routes_the_message",
            "test_unknown_ids_and_duplicate_start", "test_candidate_cannot_see_someone_elses_instance",
            "test_start_guard_refuses_with_its_message_and_starts_nothing",
            "test_a_process_is_started_only_by_the_groups_it_names",
            "test_non_staff_start_only_for_themselves",
            "test_office_started_application_is_visible_to_its_candidate",
            "test_version_zero_is_not_the_latest"))],
    "handlers/recertification.py": ["tests/handlers/test_recertification_guards.py"],
    "certflow/services/camt.py": [
        "tests/services/test_camt_reader.py",
        *(f"tests/handlers/test_camt_banks.py::{t}" for t in (
            "test_every_version_of_every_bank_layout_reads_the_same",
            "test_only_booked_incoming_money_is_read", "test_other_documents_are_refused")),
        *(f"tests/services/test_camt_rules.py::{t}" for t in (
            "test_an_internal_entity_is_not_expanded", "test_an_external_dtd_is_not_loaded",
            "test_a_huge_text_node_is_refused",
            "test_amounts_and_kenmerken_survive_the_round_trip"))],
    "certflow/services/billing/totals.py": [
        "tests/services/test_money_rules.py", "tests/handlers/test_invoicing.py",
        "--deselect", SLOW_NUMBERING],
    "certflow/services/billing/numbers.py": [
        "tests/services/test_invoice_numbers.py", "tests/services/test_numbering_rules.py",
        *(f"tests/services/test_money_rules.py::{t}" for t in (
            "test_every_digit_position_counts_with_its_own_weight",
            "test_check_digit_matches_the_published_rule",
            "test_every_invoice_gets_a_valid_unique_kenmerk", "test_check_digit_special_cases",
            "test_a_mistyped_kenmerk_is_refused",
            "test_kenmerk_typed_in_groups_is_accepted_and_letters_are_not"))],
    "certflow/services/payments.py": [
        "tests/services/test_payment_rules.py", "tests/services/test_camt_rules.py",
        "tests/handlers/test_payments.py",
        "tests/handlers/test_camt_banks.py::test_each_bank_statement_pays_its_invoices_once"],
    "certflow/engine/queue.py": [
        "tests/engine/test_permission_rules.py", "tests/engine/test_queue_rules.py",
        "tests/engine/test_inbox.py::test_pages_cover_the_inbox_once_in_queue_order[sqlite-50]",
        # Which sources a scope and a group pick (queue.sources): the SQLite half of each.
        *(f"tests/engine/test_inbox.py::test_scopes_page_like_the_rule_with_and_without_a_group[sqlite-{s}]"
          for s in ("all", "mine", "unassigned")),
        "tests/engine/test_inbox.py::test_staff_group_view_and_bad_cursor[sqlite]",
        "tests/services/test_inbox.py::test_filters_narrow_the_inbox",
        "tests/integration/test_concurrency.py::test_eight_people_claiming_one_task_at_once_get_it_once"],
    "certflow/services/billing/invoices.py": [
        "tests/services/test_invoice_rules.py", "tests/services/test_money_rules.py",
        "tests/handlers/test_invoicing.py", "tests/services/test_invoice_documents.py",
        "--deselect", SLOW_NUMBERING],
    # Accounts and getting in: service-level tests on an in-memory database, no web client.
    "certflow/services/accounts.py": ["tests/services/test_account_rules.py"],
    "certflow/services/access.py": ["tests/services/test_access_rules.py"],
    # The diagram scripts' limits. The sandbox's own guards are pinned in this process (the
    # in-process half of test_sandbox.py); the evaluator's tests start real processes, so only
    # its module runs them.
    "certflow/engine/sandbox.py": [
        "tests/engine/test_script_limits.py", "tests/engine/test_sandbox.py", "-k", "not isolated"],
    "certflow/engine/sandbox_bounds.py": [
        "tests/engine/test_script_limits.py",
        *(f"tests/engine/test_sandbox_isolation.py::{t}" for t in (
            "test_check_data_counts_shared_members_every_time",
            "test_plain_conditions_run_in_process_and_the_rest_isolated"))],
    "certflow/engine/sandbox_builtins.py": [
        "tests/engine/test_script_guards.py", "tests/engine/test_sandbox.py", "-k", "not isolated"],
    "certflow/engine/evaluator.py": [
        "tests/engine/test_evaluator_protocol.py", "tests/engine/test_sandbox_isolation.py"],
}


# The modules that take longest (measured: their tests start processes or sweep), started first.
LONGEST = ["certflow/engine/escalation.py", "certflow/engine/evaluator.py", "certflow/services/payments.py",
           "certflow/engine/queue.py", "certflow/services/billing/invoices.py"]


def slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def _pyproject_for(module: str, tests: list[str]) -> str:
    """The project's pyproject.toml with [tool.mutmut] narrowed to one module and its tests."""
    text = (ROOT / "pyproject.toml").read_text()
    section = re.search(r"^\[tool\.mutmut\]\n(.*?)(?=^\[)", text, re.S | re.M)
    assert section, "pyproject.toml has no [tool.mutmut] section"
    body = re.sub(r"^source_paths = \[.*?\]\n", "", section.group(1), flags=re.S | re.M)
    body = re.sub(r"^pytest_add_cli_args_test_selection = \[.*?\]\n", "", body, flags=re.S | re.M)
    narrowed = (f"[tool.mutmut]\nsource_paths = {json.dumps([module])}\n"
                f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n{body}")
    return text[:section.start()] + narrowed + text[section.end():]


def prepare(module: str, keep: bool) -> Path:
    work = WORK / slug(module)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = work / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    (work / "pyproject.toml").write_text(_pyproject_for(module, MODULES[module]))
    return work


def run_module(module: str, max_children: int, keep: bool, retest: bool = False) -> tuple[float, float]:
    """Run mutmut on one module; ``retest`` runs again only its last survivors (new tests).
    Returns the wall time and the CPU time (user + system of mutmut and every test run it
    forked: on a shared machine only the CPU time says what the run costs)."""
    names = [n.split()[0] for n in results(module)[1]] if retest else []
    work = prepare(module, keep or retest)
    mutmut = Path(sys.executable).with_name("mutmut")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only mutants/ imports
    # The tests' cheaper set-up for mutation runs (tests/conftest.py, tests/support.py): warm
    # and frozen fork server, database-server tests last, invoice documents only where read.
    env["CERTFLOW_MUTATION_RUN"] = "1"
    started = time.monotonic()
    log = work / "mutmut.log"
    with log.open("w") as out:
        run = subprocess.Popen([str(mutmut), "run", "--max-children", str(max_children), *names],
                               cwd=work, stdout=out, stderr=subprocess.STDOUT, env=env)
        # wait4: this mutmut's own CPU and that of every test run it forked and waited for,
        # also while another module runs beside it (--parallel).
        _, status, usage = os.wait4(run.pid, 0)
        run.returncode = os.waitstatus_to_exitcode(status)
    if run.returncode not in (0, 1):
        print(f"{module}: mutmut exited {run.returncode}; see {log}", file=sys.stderr)
        print(log.read_text()[-3000:], file=sys.stderr)
    wall, cpu = time.monotonic() - started, usage.ru_utime + usage.ru_stime
    print(f"{module}: {wall:.0f} s wall, {cpu:.0f} s CPU", file=sys.stderr, flush=True)
    return wall, cpu


def _status(code: int | None) -> str:
    from mutmut.stats import status_by_exit_code

    return str(status_by_exit_code[code])


def results(module: str) -> tuple[Counter[str], list[str]]:
    """Counter(status) and surviving mutant names from the module's mutmut .meta record."""
    meta = WORK / slug(module) / "mutants" / (module + ".meta")
    counts: Counter[str] = Counter()
    left: list[str] = []
    if not meta.exists():
        return counts, left
    for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
        status = _status(code)
        counts[status] += 1
        if status in ("survived", "no tests"):
            left.append(f"{name}  ({status})")
    return counts, left


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--module", action="append", help="only modules whose path has this")
    parser.add_argument("--survivors", action="store_true", help="list surviving mutants")
    parser.add_argument("--report-only", action="store_true", help="do not run, only report")
    parser.add_argument("--keep", action="store_true", help="keep cached verdicts")
    parser.add_argument("--retest-survivors", action="store_true",
                        help="run again only the last run's survivors (after adding tests)")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=2,
                        help="modules run side by side (mutmut's statistics and clean-test runs use "
                             "one core each; a second module fills the other)")
    args = parser.parse_args()
    modules = [m for m in MODULES if not args.module or any(p in m for p in args.module)]
    started = time.monotonic()
    seconds: dict[str, tuple[float, float]] = {}
    if not args.report_only:
        # The longest first, so the last module to finish is a short one.
        order = sorted(modules, key=lambda m: (m not in LONGEST, LONGEST.index(m) if m in LONGEST else 0))
        with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
            runs = {m: pool.submit(run_module, m, args.max_children, args.keep, args.retest_survivors)
                    for m in order}
            seconds = {m: runs[m].result() for m in modules}
    print(f"{'module':<40} {'mutants':>7} {'killed':>7} {'survived':>8} {'no tests':>8} "
          f"{'not run':>7} {'score':>6} {'time':>6} {'CPU':>6}")
    total = caught_total = 0
    listed = 0
    for module in modules:
        counts, left = results(module)
        n = sum(counts.values())
        if not n:
            print(f"{module:<40} no results (see {WORK / slug(module) / 'mutmut.log'})")
            continue
        listed += 1
        caught = sum(counts[s] for s in CAUGHT)
        total, caught_total = total + n, caught_total + caught
        wall, cpu = seconds.get(module, (None, None))
        took = "-" if wall is None else f"{wall:.0f}s"
        cpu_text = "-" if cpu is None else f"{cpu:.0f}s"
        print(f"{module:<40} {n:>7} {caught:>7} {counts['survived']:>8} {counts['no tests']:>8} "
              f"{counts['not checked']:>7} {100 * caught / n:>5.1f}% {took:>6} {cpu_text:>6}")
        if args.survivors:
            for name in left:
                print(f"    {name}")
    if seconds:
        cpu_total = sum(cpu for _, cpu in seconds.values())
        # A lower bound: mutmut's stats and clean-test runs use one core.
        print(f"\nCPU {cpu_total:.0f} s (user + system); on 2 idle cores at least "
              f"{cpu_total / 2 / 60:.1f} min")
    print(f"\nelapsed {time.monotonic() - started:.0f} s, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    score = 100 * caught_total / total if total else 0.0
    print(f"bench-mutation: modules={listed} mutants={total} score={score:.1f}")
    return 0 if listed == len(modules) else 1


if __name__ == "__main__":
    sys.exit(main())
