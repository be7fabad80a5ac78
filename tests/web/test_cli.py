"""The ``certflow`` command line: every command is listed, the same rules as the API apply,
and a mistake (bad JSON, a bad duration, an unknown task) is one clear line and a non-zero
exit, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from click.testing import CliRunner, Result

import certflow.bootstrap
from certflow.bootstrap import build_engine
from certflow.cli import main
from certflow.clock import CLOCK
from certflow.store.db import session_scope
from tests.support import create_user
from tests.support import Harness

ADDRESS = {"street": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht", "country": "NL"}
APPLICATION = json.dumps({"candidate": "cas", "eligibility_route": "hbo_diploma", "motivation": "x"})
COMMANDS = ("run", "deploy", "start", "tasks", "claim", "complete", "message", "instances",
            "incidents", "clock", "worker", "beat")


class Cli:
    def __init__(self, harness: Harness) -> None:
        self.h = harness
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(main, list(args))

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.exit_code == 0, result.output
        return result.output

    def started(self) -> str:
        self.ok("deploy", "--only", "certification")
        instance = json.loads(self.ok("start", "certification", "APP-1", "--as", "cas", "--data", APPLICATION))
        self.h.run_jobs()
        return str(instance["id"])

    def task_id(self, who: str, title: str) -> str:
        lines = [line for line in self.ok("tasks", "--as", who).splitlines() if title in line]
        assert lines, f"{who} has no {title!r}"
        return lines[0].split()[0]


@pytest.fixture
def cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    cached = certflow.bootstrap.engine
    cached.cache_clear()
    engine = build_engine()  # no broker: the test runs jobs itself
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: engine)
    with session_scope() as session:
        create_user(session, "olga", "Olga Office", ["office"], is_staff=True)
        create_user(session, "cas", "Cas Kandidaat", ["candidate"], address=ADDRESS)
    yield Cli(Harness(engine))
    cached.cache_clear()


def one_clear_line(result: Result, *words: str) -> None:
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for word in words:
        assert word in errors[0], result.output


def test_help_lists_every_command(cli: Cli) -> None:
    output = cli.ok("--help")
    for command in COMMANDS:
        assert f"  {command} " in output, command


def test_deploy_prints_versions(cli: Cli) -> None:
    assert cli.ok("deploy", "--only", "certification") == (
        "certification: version 1 (new)\nshared/fees.dmn: version 1 (new)\nshared/vat.dmn: version 1 (new)\n")
    assert cli.ok("deploy", "--only", "certification").splitlines()[0] == "certification: version 1 (unchanged)"
    one_clear_line(cli("deploy", "--as", "cas"), "only staff may deploy")
    one_clear_line(cli("deploy", "--as", "ghost"), "no user 'ghost'")


def test_start_tasks_complete(cli: Cli) -> None:
    instance_id = cli.started()
    task = cli.task_id("olga", "Toelaatbaarheid beoordelen")
    assert cli.ok("tasks", "--as", "cas").strip() == ""
    one_clear_line(cli("complete", task, "--as", "olga", "--data", "{not json"), "--data is not JSON")
    one_clear_line(cli("complete", task, "--as", "olga", "--data", "[1, 2]"), "must be a JSON object")
    one_clear_line(cli("complete", task, "--as", "olga", "--data", '{"eligible": "yes", "remarks": ""}'),
                   "rejected", "eligible")
    one_clear_line(cli("complete", task, "--as", "cas", "--data", '{"eligible": true, "remarks": ""}'),
                   "group 'office'")
    done = json.loads(cli.ok("complete", task, "--as", "olga", "--data", '{"eligible": true, "remarks": "ok"}'))
    assert (done["task_id"], done["instance_status"]) == (task, "running")
    one_clear_line(cli("complete", task, "--as", "olga", "--data", '{"eligible": true, "remarks": "ok"}'),
                   "no open task")
    assert instance_id in cli.ok("instances", "--as", "olga")
    shown = json.loads(cli.ok("instances", instance_id, "--as", "olga"))
    assert shown["instance"]["id"] == instance_id and shown["history"]


@pytest.mark.parametrize("command", [("claim", "nope"), ("complete", "nope", "--data", "{}")])
def test_unknown_task_id_is_one_clear_line(cli: Cli, command: tuple[str, ...]) -> None:
    one_clear_line(cli(*command, "--as", "olga"), "no open task 'nope'")


def test_message_nobody_waits_for(cli: Cli) -> None:
    cli.ok("deploy", "--only", "certification")
    one_clear_line(cli("message", "payment_received", "--correlate", "invoice_number=2000-000001"),
                   "no instance is waiting")
    one_clear_line(cli("message", "payment_received", "--as", "cas", "--correlate", "invoice_number=1"),
                   "only staff")


def test_incidents(cli: Cli) -> None:
    assert cli.ok("incidents").strip() == ""
    one_clear_line(cli("incidents", "--as", "cas"), "staff")


def test_clock_advance_moves_forward_only(cli: Cli) -> None:
    before = CLOCK.offset
    assert cli.ok("clock", "advance", "P30D").startswith("now ")
    assert CLOCK.offset - before == timedelta(days=30)
    refused = cli("clock", "advance", "-P1D")  # click reads it as an option: refused all the same
    assert refused.exit_code != 0 and "Error" in refused.output
    one_clear_line(cli("clock", "advance", "--", "-P1D"), "not an ISO 8601 duration")
    one_clear_line(cli("clock", "advance", "soon"), "not an ISO 8601 duration", "'soon'")
    one_clear_line(cli("clock", "advance", "P0D"), "only moves forward")
    assert CLOCK.offset - before == timedelta(days=30)


def test_newsletter_goes_to_account_holders_once_per_issue(cli: Cli) -> None:
    import mailbox

    from certflow.settings import get_settings
    from certflow.store.db import session_scope
    from tests.support import create_user

    with session_scope() as s:
        create_user(s, "nina", "Nina", ["candidate"])
        create_user(s, "otto", "Otto", ["candidate"])
    runner = CliRunner()
    args = ["newsletter", "--subject", "Nieuwsbrief december", "--context", '{"body": "Hallo allemaal."}']
    first = runner.invoke(main, args)
    assert first.exit_code == 0 and first.output.startswith("sent to ")
    assert runner.invoke(main, args).output.strip() == "sent to 0 account holder(s)"
    box = mailbox.Maildir(get_settings().var_dir / "mail", create=False)
    recipients = [m["To"] for m in box]
    assert {"Nina <nina@example.org>", "Otto <otto@example.org>"} <= set(recipients)
    assert len(recipients) == len(set(recipients)) == int(first.output.split()[2])


@pytest.mark.parametrize("command", [("deploy",), ("tasks",), ("instances",), ("incidents",),
                                     ("start", "flow", "K1"), ("clock", "now")])
def test_an_unmigrated_database_says_run_migrate_first(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                       command: tuple[str, ...]) -> None:
    from certflow.settings import reset_settings
    from certflow.store.db import reset_engines

    monkeypatch.setenv("CERTFLOW_ENV", "test")
    monkeypatch.setenv("CERTFLOW_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'never-migrated.sqlite'}")
    monkeypatch.setenv("REDIS_URL", "")
    reset_settings()
    reset_engines()
    certflow.bootstrap.engine.cache_clear()
    try:
        one_clear_line(CliRunner().invoke(main, list(command)), "run `certflow migrate` first")
    finally:
        certflow.bootstrap.engine.cache_clear()
        reset_engines()
        reset_settings()
