"""What a diagram script can build and call, pinned at the edges: 100,000 items and 10**100 are
fine, one more is refused with the limit named; the date helpers give the dates a process
owner expects, across Easter, King's Day, 5 May and the change to summer time."""

from __future__ import annotations

import re
import sys
import traceback
from datetime import date, datetime, timezone
from types import FrameType
from typing import Any

import pytest

from certflow.engine.sandbox import SandboxEnvironment, ScriptLimitExceeded
from certflow.engine.sandbox_builtins import INT_LIMIT, MAX_ITEMS, MAX_RANGE, make_builtins, make_date_helpers
from certflow.localtime import LOCAL_TZ

pytestmark = pytest.mark.usefixtures("fresh_script_caches")  # rules computed, not recalled
FIXED_NOW = datetime(2024, 1, 31, 23, 30, tzinfo=timezone.utc)


def run(script: str, **data: Any) -> dict[str, Any]:
    SandboxEnvironment(now=lambda: FIXED_NOW, isolated=False).execute(script, data)
    return data


def value(expression: str, **data: Any) -> Any:
    return SandboxEnvironment(now=lambda: FIXED_NOW, isolated=False).evaluate(expression, data)


def refused(script: str, message: str, **data: Any) -> None:
    with pytest.raises(ScriptLimitExceeded) as info:
        run(script, **data)
    assert str(info.value) == message


TOO_MANY = "would produce 100001 items; the limit is 100000"
TOO_BIG = "integer result exceeds 10**100"


def test_the_limits_are_what_the_messages_say() -> None:
    assert (MAX_ITEMS, MAX_RANGE, INT_LIMIT) == (100_000, 100_000, 10**100)


# --- sizes: exactly at the limit works, one more is refused ----------------------------------


@pytest.mark.parametrize(("fits", "over", "what"), [
    ("x = 'a' * 100000", "x = 'a' * 100001", "repetition"),
    ("x = [0] * 100000", "x = [0] * 100001", "repetition"),
    ("x = 100000 * (0,)", "x = 100001 * (0,)", "repetition"),
    ("x = b'a' * 100000", "x = b'a' * 100001", "repetition"),
    ("x = 'a' * 50000 + 'b' * 50000", "x = 'a' * 50000 + 'b' * 50001", "concatenation"),
    ("x = [0] * 50000 + [1] * 50000", "x = [0] * 50001 + [1] * 50000", "concatenation"),
    ("x = 'a'\nx *= 100000", "x = 'a'\nx *= 100001", "repetition"),
    ("x = [0] * 99999\nx += [1]", "x = [0] * 100000\nx += [1]", "concatenation"),
    ("d = {'k': 'a'}\nd['k'] *= 100000", "d = {'k': 'a'}\nd['k'] *= 100001", "repetition"),
    ("x = '-'.join(['a' * 50000, 'b' * 49999])", "x = '-'.join(['a' * 50000, 'b' * 50000])", "join"),
    ("x = str.join('', ['a' * 50000] * 2)", "x = str.join('-', ['a' * 50000] * 2)", "join"),
    ("x = ('a' * 99998 + 'c').replace('c', 'cc')", "x = ('a' * 99999 + 'c').replace('c', 'cc')", "replace"),
    ("x = ('a' * 49999).replace('', 'b')", "x = ('a' * 50000).replace('', 'b')", "replace"),
    ("x = ('a' * 1000).replace('a', 'b' * 101, 990)", "x = ('a' * 1000).replace('a', 'b' * 101, 991)", "replace:100100"),
    ("x = [0] * 99999\nx.extend([1])", "x = [0] * 100000\nx.extend([1])", "extend"),
    ("x = [0] * 99999\nlist.extend(x, [1])", "x = [0] * 100000\nlist.extend(x, [1])", "extend"),
    ("x = 'a' * 50000\ny = f'{x}{x}'", "x = 'a' * 50000\ny = f'{x}{x}!'", "value"),
    ("x = [0] * 50000\ny = [*x, *x]", "x = [0] * 50000\ny = [*x, *x, 1]", "value"),
    ("x = [0] * 50000\ny = (*x, *x)", "x = [0] * 50000\ny = (*x, 1, *x)", "value"),
    ("x = list(range(50000))\ny = {*x, *[-1 - i for i in x]}", "x = list(range(50000))\ny = {*x, *[-1 - i for i in x], -10**6}", "value"),
])
def test_sizes_up_to_100000_items(fits: str, over: str, what: str) -> None:
    run(fits)
    what, _, count = what.partition(":")
    refused(over, f"{what} {TOO_MANY}".replace("100001", count or "100001"))


def test_a_replace_with_count_zero_changes_nothing() -> None:
    assert run("x = ('a' * 1000).replace('a', 'b' * 1000, 0)")["x"] == "a" * 1000


def test_ordinary_operations_keep_their_meaning() -> None:
    data = run(
        "s = 'ab' + 'cd'\nl = [1] + [2]\nn = 3 * 4 + 2 ** 3 - (1 << 4)\nm = 7 % 3\nf = 2.0 ** 10\n"
        "p = 'CMI-%04d' % 7\nq = b'%d' % 5\nr = 'a-b'.replace('-', '+')\nj = '-'.join([])\n"
        "k = 'ab' * -3\nt = (1,) * 0\nu = [1]\nu += [2]\nv = u\nv.extend([3])\nw = 'x'\nw += 'y'\n"
        "z = 2\nz **= 3\ny = 3\ny <<= 2\nc = 5\nc %= 3\ne = 6\ne -= 1\nd = {'k': 2}\nd['k'] **= 3\n"
        "a, *rest = [1, 2, 3]\nbb = b'ab'.replace(b'a', b'c')\njb = b','.join([b'a', b'b'])\n"
        "st = str.replace('aa', 'a', 'b')\n")
    assert (data["s"], data["l"], data["n"], data["m"], data["f"]) == ("abcd", [1, 2], 4, 1, 1024.0)
    assert (data["p"], data["q"], data["r"], data["j"], data["k"], data["t"]) == ("CMI-0007", b"5", "a+b", "", "", ())
    assert data["u"] == [1, 2, 3] and data["v"] is data["u"]  # += and extend work in place
    assert (data["w"], data["z"], data["y"], data["c"], data["e"], data["d"]) == ("xy", 8, 12, 2, 5, {"k": 8})
    assert (data["a"], data["rest"], data["bb"], data["jb"], data["st"]) == (1, [2, 3], b"cb", b"a,b", "bb")


# --- integers: 10**100 works, one more is refused ---------------------------------------------


@pytest.mark.parametrize("expression", [
    "10 ** 100", "-(10 ** 100)", "10 ** 50 * 10 ** 50", "2 ** 332", "1 << 332", "-1 << 332", "3 ** 209",
    "(-10) ** 100", "10 ** 99 * 10", "10 ** 100 - 1 + 1", "2 ** 0", "0 << 1000", "1 ** (10 ** 100)",
])
def test_integers_up_to_ten_to_the_hundred(expression: str) -> None:
    assert abs(value(expression)) <= 10**100
    assert value(expression) == eval(expression)  # noqa: S307 - our own literal arithmetic


@pytest.mark.parametrize("script", [
    "x = 10 ** 100 + 1", "x = -(10 ** 100) + -1", "x = 10 ** 50 * 10 ** 50 * 10", "x = 2 ** 333",
    "x = 1 << 333", "x = -1 << 333", "x = 3 ** 210", "x = 10 ** 100\nx += 1", "x = 10 ** 100\nx *= 10",
    "x = 2 ** 10 ** 10", "x = 1 << 10 ** 10", "x = 10 ** 10 ** 5 * 10 ** 10 ** 5",
    "d = {'k': 10 ** 100}\nd['k'] += 1",
])
def test_one_past_ten_to_the_hundred_is_refused(script: str) -> None:
    refused(script, TOO_BIG)


# --- %-formatting, range, round, sum -----------------------------------------------------------


@pytest.mark.parametrize(("fits", "over"), [
    ("'%999d' % 1", "'%1000d' % 1"), ("'%.999f' % 1", "'%.1000f' % 1"), ("'%-999s' % 'a'", "'%-1000s' % 'a'"),
    ("'%(a)999s' % {'a': 1}", "'%(a)1000s' % {'a': 1}"), ("b'%999d' % 1", "b'%1000d' % 1"),
    ("'%5.2f %d' % (1, 2)", "'%5.2f %*d' % (1, 5, 2)"), ("'%5.2f' % 1", "'%5.*f' % (2, 1)"),
])
def test_percent_format_widths_below_1000(fits: str, over: str) -> None:
    assert len(value(fits)) >= 1
    refused(f"x = {over}", "%-format width/precision must be a literal below 1000")


def test_range_up_to_100000() -> None:
    assert len(value("range(100000)")) == 100000
    assert list(value("range(10, 0, -3)")) == [10, 7, 4, 1]
    refused("x = range(100001)", "range() of 100001 items; the limit is 100000")
    refused("x = range(0, 10 ** 30)", "range() of 100001 items; the limit is 100000")  # beyond len()


def test_round_up_to_100_digits() -> None:
    assert value("round(2.5)") == 2 and value("round(1.234, 2)") == 1.23
    assert value("round(5, 100)") == 5 and value("round(5, -100)") == 0
    refused("x = round(5, 101)", "round() ndigits beyond ±100")
    refused("x = round(5, -101)", "round() ndigits beyond ±100")


def test_sum_adds_numbers_only() -> None:
    assert value("sum([1, 2])") == 3 and value("sum([1], 0.5)") == 1.5 and value("sum([1, 2], 3)") == 6
    for script in ("x = sum(['a'], 'x')", "x = sum([[1]], [])"):
        with pytest.raises(TypeError, match=r"^sum\(\) adds numbers only; use join\(\) or \+ for strings and lists$"):
            run(script)


# --- date helpers --------------------------------------------------------------------------


def test_dates_from_text_and_back() -> None:
    assert value("parse_date(' 2025-03-01 ')") == date(2025, 3, 1)
    assert value("parse_date('2025-03-01T23:30:00+01:00')") == date(2025, 3, 1)  # the date as written
    assert value("parse_date(parse_date('2025-03-01'))") == date(2025, 3, 1)
    with pytest.raises(TypeError, match="^expected an ISO date string, got int$"):
        value("parse_date(20250301)")
    with pytest.raises(ValueError):
        value("parse_date('1 maart')")


def test_parse_date_of_a_datetime_is_its_date() -> None:
    helpers = make_date_helpers(lambda: FIXED_NOW)
    assert helpers["parse_date"](datetime(2025, 3, 1, 23, 59)) == date(2025, 3, 1)


@pytest.mark.parametrize(("expression", "expected"), [
    ("add_days('2024-02-28', 1)", "2024-02-29"), ("add_days('2024-03-01', -1)", "2024-02-29"),
    ("add_months('2024-01-31', 1)", "2024-02-29"), ("add_months('2023-01-31', 1)", "2023-02-28"),
    ("add_months('2024-03-31', -1)", "2024-02-29"), ("add_months('2024-12-15', 1)", "2025-01-15"),
    ("add_months('2024-01-15', -1)", "2023-12-15"), ("add_months('2024-05-31', 25)", "2026-06-30"),
    ("add_months('9999-11-30', 1)", "9999-12-30"), ("add_months('0001-02-01', -1)", "0001-01-01"),
    ("add_years('2024-02-29', 1)", "2025-02-28"), ("add_years('2024-02-29', 4)", "2028-02-29"),
    ("add_years('2024-06-01', -3)", "2021-06-01"),
    ("iso_duration_days(14)", "P14D"), ("iso_duration_days(0)", "P0D"), ("iso_duration_days('7')", "P7D"),
])
def test_calendar_arithmetic(expression: str, expected: str) -> None:
    assert value(expression) == expected


@pytest.mark.parametrize(("expression", "message"), [
    ("add_months('9999-12-01', 1)", "add_months() result year 10000 is out of range"),
    ("add_months('0001-01-01', -1)", "add_months() result year 0 is out of range"),
    ("iso_duration_days(-1)", "iso_duration_days() needs a non-negative number of days"),
])
def test_calendar_arithmetic_out_of_range(expression: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        value(expression)
    assert str(info.value) == message


def _dutch(stamp: str) -> str:
    return datetime.fromisoformat(stamp).astimezone(LOCAL_TZ).isoformat(timespec="minutes")


def at(local_text: str) -> SandboxEnvironment:
    moment = datetime.fromisoformat(local_text).replace(tzinfo=LOCAL_TZ).astimezone(timezone.utc)  # the clock is UTC
    return SandboxEnvironment(now=lambda: moment, isolated=False)


@pytest.mark.parametrize(("day", "expected"), [
    ("2026-04-02", "2026-04-02"),  # a Thursday: itself
    ("2026-04-03", "2026-04-07"),  # Good Friday, the weekend, Easter Monday
    ("2026-04-27", "2026-04-28"),  # King's Day, a Monday
    ("2026-05-05", "2026-05-06"),  # Liberation Day, every year
    ("2025-04-26", "2025-04-28"),  # King's Day celebrated on Saturday 26 April 2025
    ("2026-04-03T23:59:00+02:00", "2026-04-07"),
])
def test_working_day_is_the_first_working_day_from_a_date(day: str, expected: str) -> None:
    assert value("working_day(d)", d=day) == expected


@pytest.mark.parametrize(("day", "expected"), [
    ("2026-04-02", "2026-04-03T00:00+02:00"),  # a working day ends at its midnight
    ("2026-04-03", "2026-04-08T00:00+02:00"),  # Good Friday: through Tuesday after Easter
    ("2026-04-27", "2026-04-29T00:00+02:00"),  # King's Day: through Tuesday
    ("2026-03-27", "2026-03-28T00:00+01:00"),  # before summer time
])
def test_term_end_is_the_end_of_the_last_working_day(day: str, expected: str) -> None:
    assert _dutch(value("term_end(d)", d=day)) == expected


@pytest.mark.parametrize(("now", "expression", "expected"), [
    ("2026-04-02T10:00", "deadline('1 werkdag')", "2026-04-08T00:00+02:00"),  # across Easter
    ("2026-04-24T10:00", "deadline('1 werkdag')", "2026-04-29T00:00+02:00"),  # across King's Day
    ("2026-03-27T10:00", "deadline('2 werkdagen')", "2026-04-01T00:00+02:00"),  # into summer time
    ("2026-03-20T10:00", "deadline('P14D')", "2026-04-03T11:00+02:00"),  # calendar days: Good Friday
    ("2026-03-20T10:00", "deadline('P14D', True)", "2026-04-08T00:00+02:00"),  # moved past Easter
    ("2026-03-20T10:00", "deadline('P14D', 1)", "2026-04-08T00:00+02:00"),
    ("2026-03-20T10:00", "deadline('P14D', 0)", "2026-04-03T11:00+02:00"),
    ("2026-03-24T10:00", "deadline('P14D', True)", "2026-04-07T11:00+02:00"),  # a working day: kept
])
def test_deadline_from_the_scripts_clock(now: str, expression: str, expected: str) -> None:
    assert _dutch(at(now).evaluate(expression, {})) == expected


def test_a_bad_term_is_a_value_error_naming_the_term() -> None:
    with pytest.raises(ValueError, match="ISO 8601 duration") as info:
        value("deadline('14 dagen')")
    assert "14 dagen" in str(info.value)
    assert type(info.value) is ValueError


def test_the_calendar_helpers_are_not_traced() -> None:
    # The calendar is library code: traced, its thousands of lines would count against the
    # script's time. The script's own tracer is back afterwards.
    helpers = make_date_helpers(lambda: FIXED_NOW)
    events: list[str] = []

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        events.append(frame.f_code.co_name)
        return tracer

    before = sys.gettrace()
    sys.settrace(tracer)
    try:
        results = (helpers["working_day"]("2026-04-03"), helpers["term_end"]("2026-04-03"),
                   helpers["deadline"]("1 werkdag"))
        inside = sys.gettrace()
    finally:
        sys.settrace(before)
    assert inside is tracer
    assert results[0] == "2026-04-07"
    assert not {"is_working_day", "next_working_day", "term_end", "deadline", "parse_term"} & set(events)


def test_the_builtins_hold_the_helpers_and_the_guards() -> None:
    names = set(make_builtins(lambda: FIXED_NOW))
    assert {"len", "range", "today", "deadline", "term_end", "_sandbox_binop", "_sandbox_sized"} <= names
    assert not {"open", "eval", "exec", "getattr", "type", "__import__"} & names


def test_long_task_data_repeated_zero_times_or_joined_alone_is_fine() -> None:
    long = "a" * 150_000  # task data may be longer than what a script may build
    assert run("x = t * 0\ny = 0 * t", t=long) == {"t": long, "x": "", "y": ""}
    assert len(run("x = '-'.join([t])", t="a" * 100_000)["x"]) == 100_000


def test_a_method_the_value_does_not_have_is_an_attribute_error() -> None:
    for script, kind in (("d = {}\nd.extend([1])", "dict"), ("d = {}\nx = d.replace('a', 'b')", "dict"),
                         ("x = (1,).join([])", "tuple")):
        with pytest.raises(AttributeError, match=f"^'{kind}' object has no attribute"):
            run(script)


def test_an_error_inside_a_guarded_operation_points_at_its_own_line() -> None:
    with pytest.raises(TypeError) as info:
        run("x = (1 +\n     [] * 'a')")
    lines = [f.lineno for f in traceback.extract_tb(info.value.__traceback__) if f.filename == "<string>"]
    assert lines[-1] == 2


def test_an_f_string_guards_what_it_formats() -> None:
    refused("x = f\"{'a' * 100001}\"", f"repetition {TOO_MANY}")


def test_a_moment_with_spaces_around_it_is_read_as_its_date() -> None:
    assert value("parse_date(' 2025-03-01T23:30:00+01:00 ')") == date(2025, 3, 1)


def test_adding_text_and_a_number_is_pythons_own_error() -> None:
    with pytest.raises(TypeError, match=r'^can only concatenate str \(not "int"\) to str$'):
        run("x = 'a' + 1")
    with pytest.raises(TypeError, match=r"^unsupported operand type\(s\) for \+: 'int' and 'str'$"):
        run("x = 1 + 'a'")


@pytest.mark.timeout(60)
def test_a_shift_bomb_is_refused_by_the_guard_not_by_the_memory_limit() -> None:
    assert value("1 << 5") == 32
    isolated = SandboxEnvironment(now=lambda: FIXED_NOW)  # 1 << 10**10 would need 1.25 GB
    with pytest.raises(ScriptLimitExceeded, match=re.escape(TOO_BIG)):
        isolated.execute("x = 1 << 10 ** 10", {})


def test_two_huge_numbers_from_the_task_data_are_refused_before_they_are_multiplied() -> None:
    """Task data may hold integers far above 10**100 (a script cannot make them): their product
    is refused from the sizes alone, before the multiplication spends the script's CPU."""
    from certflow.engine import sandbox_builtins

    huge = 2**5000
    for a, b in ((huge, huge), (huge, 3), (3, huge)):
        with pytest.raises(ScriptLimitExceeded, match=r"exceeds 10\*\*100"):
            sandbox_builtins._pre_mul(a, b)
    sandbox_builtins._pre_mul(10**50, 10**49)  # within the limit: computed


def test_at_local_is_the_dutch_wall_clock_moment_of_that_day() -> None:
    """A diagram's ``at_local(day, '09:00')`` (the recertification invitation) is 09:00 in
    Amsterdam on that day, summer (+02:00) and winter (+01:00) alike, 09:00 when no time is
    given; a time with an offset or not as text is refused, naming the helper."""
    at_local = make_date_helpers(lambda: datetime(2027, 1, 1, tzinfo=timezone.utc))["at_local"]
    assert at_local("2027-07-01", "09:00") == "2027-07-01T09:00:00+02:00"
    assert at_local("2027-12-01") == "2027-12-01T09:00:00+01:00"
    assert at_local("2027-03-28", " 09:00 ") == "2027-03-28T09:00:00+02:00"  # the day summer time starts
    assert at_local("2027-10-31", "09:30") == "2027-10-31T09:30:00+01:00"  # the day it ends
    with pytest.raises(TypeError, match=re.escape("at_local() needs the time as text such as '09:00', got int")):
        at_local("2027-07-01", 9)
    with pytest.raises(ValueError, match=re.escape(
            "at_local() takes a Dutch wall-clock time without an offset, got '09:00+01:00'")):
        at_local("2027-07-01", "09:00+01:00")
