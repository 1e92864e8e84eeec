"""backend.todos.recurrence: the RRULE subset, time zones, and successors (no database).

The properties check successor() against dateutil itself: an rrule built here from the rule's
parts (not from its text), with the due date's local wall-clock time for DTSTART."""

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import DAILY, MO, MONTHLY, WEEKLY, YEARLY, rrule, weekdays
from hypothesis import example, given, settings
from hypothesis import strategies as st

from backend.todos.recurrence import (
    InvalidRecurrence,
    Successor,
    check_time_zone,
    normalize_rule,
    successor,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata")
FREQS = {"DAILY": DAILY, "WEEKLY": WEEKLY, "MONTHLY": MONTHLY, "YEARLY": YEARLY}
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# Instants with the most to get wrong: local times on, just before and a week before
# daylight-saving changes (in the gap, in the repeated hour, either side), month ends, 29 Feb.
DST_DAYS = {
    "Europe/Berlin": [(2024, 3, 31), (2024, 10, 27), (2025, 3, 30), (2025, 10, 26)],
    "America/New_York": [(2024, 3, 10), (2024, 11, 3), (2025, 3, 9), (2025, 11, 2)],
    "Australia/Lord_Howe": [(2025, 4, 6), (2025, 10, 5)],  # half-hour changes
}
MONTH_ENDS = [(2024, 1, 31), (2024, 2, 29), (2025, 3, 31), (2025, 8, 31), (2025, 12, 31)]


def local_instant(zone: str, day: date, hour: int, minute: int, fold: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, fold=fold), ZoneInfo(zone)).astimezone(UTC)


SPECIAL_CASES = sorted(
    {
        (zone, local_instant(zone, date(*day) + timedelta(days=shift), hour, minute, fold))
        for zone, days in DST_DAYS.items()
        for day, shift in itertools.product(days, (-7, -1, 0))
        for (hour, minute), fold in itertools.product(
            [(0, 30), (1, 30), (2, 0), (2, 30), (3, 30), (9, 0)], (0, 1)
        )
    }
    | {
        (zone, local_instant(zone, date(*day), hour, 0))
        for zone, day, hour in itertools.product(ZONES, MONTH_ENDS, (0, 9, 23))
    }
)


class Parts(NamedTuple):
    """A rule of the subset by part, as the tests generate it."""

    freq: str
    interval: int | None = None
    byday: tuple[str, ...] = ()
    bymonthday: tuple[int, ...] = ()
    count: int | None = None
    until: datetime | None = None  # aware, UTC, whole seconds

    def pairs(self) -> list[tuple[str, str]]:
        """KEY=VALUE pairs in the normal order."""
        pairs = [("FREQ", self.freq)]
        if self.interval is not None:
            pairs.append(("INTERVAL", str(self.interval)))
        if self.byday:
            pairs.append(("BYDAY", ",".join(self.byday)))
        if self.bymonthday:
            pairs.append(("BYMONTHDAY", ",".join(map(str, self.bymonthday))))
        if self.count is not None:
            pairs.append(("COUNT", str(self.count)))
        if self.until is not None:
            pairs.append(("UNTIL", self.until.strftime("%Y%m%dT%H%M%SZ")))
        return pairs

    @property
    def text(self) -> str:
        return ";".join(f"{key}={value}" for key, value in self.pairs())

    def series(self, dtstart: datetime) -> rrule:
        """dateutil's rrule for these parts, built directly (RFC 5545's week start, Monday)."""
        return rrule(
            FREQS[self.freq],
            dtstart=dtstart,
            interval=self.interval or 1,
            wkst=MO,
            byweekday=[weekdays[DAYS.index(day)] for day in self.byday] or None,
            bymonthday=list(self.bymonthday) or None,
            count=self.count,
            until=self.until,
        )


def exists(local: datetime) -> bool:
    """Whether a zoned wall-clock time happens at all (is not in a spring-forward gap)."""
    back = local.astimezone(UTC).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


# ---------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        ("FREQ=DAILY", "FREQ=DAILY"),
        ("freq=daily", "FREQ=DAILY"),
        ("Freq=Weekly;ByDay=mo,We", "FREQ=WEEKLY;BYDAY=MO,WE"),
        ("FREQ=WEEKLY;BYDAY=SU,MO", "FREQ=WEEKLY;BYDAY=SU,MO"),  # order kept
        ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU"),
        ("COUNT=5;INTERVAL=02;FREQ=DAILY", "FREQ=DAILY;INTERVAL=2;COUNT=5"),
        ("FREQ=DAILY;INTERVAL=1", "FREQ=DAILY;INTERVAL=1"),  # kept when given
        ("FREQ=DAILY;INTERVAL=" + "0" * 50 + "7", "FREQ=DAILY;INTERVAL=7"),
        ("FREQ=YEARLY;INTERVAL=1000", "FREQ=YEARLY;INTERVAL=1000"),
        ("FREQ=MONTHLY;BYMONTHDAY=+5,-1,031", "FREQ=MONTHLY;BYMONTHDAY=5,-1,31"),
        ("FREQ=MONTHLY;BYMONTHDAY=-31,29,30,31", "FREQ=MONTHLY;BYMONTHDAY=-31,29,30,31"),
        ("FREQ=DAILY;COUNT=1", "FREQ=DAILY;COUNT=1"),
        ("FREQ=DAILY;COUNT=100000", "FREQ=DAILY;COUNT=100000"),
        ("until=20301231t235959z;freq=yearly", "FREQ=YEARLY;UNTIL=20301231T235959Z"),
        (
            "UNTIL=20250101T000000Z;BYMONTHDAY=1;INTERVAL=3;FREQ=MONTHLY",
            "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1;UNTIL=20250101T000000Z",
        ),
    ],
)
def test_valid_rules_and_their_normal_forms(value: str, normal: str) -> None:
    assert normalize_rule(value) == normal
    assert normalize_rule(normal) == normal


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must not be empty"),
        ("garbage", "'garbage' is not KEY=VALUE"),
        ("FREQ=DAILY;", "empty part"),
        (";FREQ=DAILY", "empty part"),
        ("FREQ=DAILY;;COUNT=2", "empty part"),
        ("RRULE:FREQ=DAILY", "without the 'RRULE:' prefix"),
        ("rrule:freq=daily", "without the 'RRULE:' prefix"),
        ("FREQ=DAILY;FOO=1", "unknown recurrence part 'FOO'"),
        ("FREQ=DAILY;WKST=SU", "unknown recurrence part 'WKST'"),
        ("FREQ=YEARLY;BYMONTH=2", "unknown recurrence part 'BYMONTH'"),
        ("FREQ=DAILY; COUNT=2", "unknown recurrence part ' COUNT'"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ is given more than once"),
        ("FREQ=DAILY;count=2;COUNT=2", "COUNT is given more than once"),
        ("INTERVAL=2", "FREQ is required"),
        ("FREQ=HOURLY", "FREQ must be one of DAILY, WEEKLY, MONTHLY, YEARLY, not 'HOURLY'"),
        ("FREQ=", "FREQ must be one of"),
        ("FREQ=DAİLY", "must be ASCII"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be an integer from 1 to 1000, not '0'"),
        ("FREQ=DAILY;INTERVAL=1001", "INTERVAL must be an integer from 1 to 1000"),
        ("FREQ=DAILY;INTERVAL=-1", "INTERVAL must be"),
        ("FREQ=DAILY;INTERVAL=+2", "INTERVAL must be"),
        ("FREQ=DAILY;INTERVAL=1_0", "INTERVAL must be"),
        ("FREQ=DAILY;INTERVAL=", "INTERVAL must be"),
        ("FREQ=DAILY;INTERVAL=" + "9" * 5000, "INTERVAL must be"),
        ("FREQ=DAILY;COUNT=0", "COUNT must be an integer from 1 to 100000"),
        ("FREQ=DAILY;COUNT=100001", "COUNT must be"),
        ("FREQ=DAILY;COUNT=٣", "must be ASCII"),
        ("FREQ=DAILY;BYDAY=MO", "BYDAY is only allowed with FREQ=WEEKLY"),
        ("FREQ=MONTHLY;BYDAY=1MO", "BYDAY is only allowed with FREQ=WEEKLY"),
        ("FREQ=WEEKLY;BYDAY=1MO", "BYDAY takes weekdays without a numeric prefix"),
        ("FREQ=WEEKLY;BYDAY=-1FR", "without a numeric prefix"),
        ("FREQ=WEEKLY;BYDAY=MO,XX", "BYDAY must list MO,TU,WE,TH,FR,SA,SU, not 'XX'"),
        ("FREQ=WEEKLY;BYDAY=MO,,TU", "BYDAY must list"),
        ("FREQ=WEEKLY;BYDAY=", "BYDAY must list"),
        ("FREQ=WEEKLY;BYDAY=MO,mo", "BYDAY lists MO more than once"),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY is only allowed with FREQ=MONTHLY"),
        ("FREQ=YEARLY;BYMONTHDAY=1", "BYMONTHDAY is only allowed with FREQ=MONTHLY"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY must list days from 1 to 31 or -31 to -1"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "not '32'"),
        ("FREQ=MONTHLY;BYMONTHDAY=-32", "not '-32'"),
        ("FREQ=MONTHLY;BYMONTHDAY=-0", "BYMONTHDAY must list"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,,2", "BYMONTHDAY must list"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,01", "BYMONTHDAY lists 1 more than once"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20250101T000000Z", "COUNT and UNTIL cannot both be given"),
        ("FREQ=DAILY;UNTIL=20250101T000000", "UNTIL must be a UTC date-time of the form"),
        ("FREQ=DAILY;UNTIL=20250101", "UNTIL must be a UTC date-time"),
        ("FREQ=DAILY;UNTIL=2025-01-01T00:00:00Z", "UNTIL must be a UTC date-time"),
        ("FREQ=DAILY;UNTIL=20250230T000000Z", "UNTIL is not a valid date-time"),
        ("FREQ=DAILY;UNTIL=20251231T240000Z", "UNTIL is not a valid date-time"),
        ("FREQ=DAILY;UNTIL=00000101T000000Z", "UNTIL is not a valid date-time"),
    ],
)
def test_invalid_rules_name_the_problem(value: str, message: str) -> None:
    with pytest.raises(InvalidRecurrence, match=message.replace("(", r"\(").replace("+", r"\+")):
        normalize_rule(value)


def test_invalid_recurrence_is_a_value_error() -> None:
    """So validators of request bodies (pydantic, msgspec) report it like any bad value."""
    assert issubclass(InvalidRecurrence, ValueError)


def test_long_input_is_shortened_in_messages() -> None:
    with pytest.raises(InvalidRecurrence) as raised:
        normalize_rule("FREQ=DAILY;COUNT=" + "x" * 10_000)
    assert len(str(raised.value)) < 200


def test_successor_rejects_invalid_rules_too() -> None:
    with pytest.raises(InvalidRecurrence, match="FREQ is required"):
        successor("COUNT=2", datetime(2025, 1, 1, tzinfo=UTC), "UTC")


@pytest.mark.parametrize("name", ["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata"])
def test_known_time_zones_are_accepted(name: str) -> None:
    assert check_time_zone(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Base",
        "",
        "../etc/passwd",
        "/usr/share/zoneinfo/UTC",
        "localtime",
        "posixrules",
        "utc",
        "europe/berlin",
        "Europe/Berlin ",
        "Europe/Berlin\x00",
    ],
)
def test_unknown_time_zones_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        check_time_zone(name)


def test_successor_rejects_an_unknown_time_zone() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        successor("FREQ=DAILY", datetime(2025, 1, 1, tzinfo=UTC), "Mars/Base")


def test_successor_rejects_a_naive_due_at() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        successor("FREQ=DAILY", datetime(2025, 1, 1), "UTC")


# ------------------------------------------------------------------------- explicit successors


def wall_clock(moment: datetime, zone: ZoneInfo) -> tuple[int, int, int]:
    local = moment.astimezone(zone)
    return local.hour, local.minute, local.second


def test_weekly_monday_nine_in_berlin_stays_at_nine_across_both_changes() -> None:
    march = successor("FREQ=WEEKLY;BYDAY=MO", datetime(2025, 3, 24, 8, tzinfo=UTC), "Europe/Berlin")
    assert march == Successor(datetime(2025, 3, 31, 7, tzinfo=UTC), "FREQ=WEEKLY;BYDAY=MO")
    october = successor(
        "FREQ=WEEKLY;BYDAY=MO", datetime(2025, 10, 20, 7, tzinfo=UTC), "Europe/Berlin"
    )
    assert october == Successor(datetime(2025, 10, 27, 8, tzinfo=UTC), "FREQ=WEEKLY;BYDAY=MO")
    for step in (march, october):
        assert step is not None
        assert step.due_at.tzinfo is UTC
        assert wall_clock(step.due_at, BERLIN) == (9, 0, 0)


def test_daily_nine_in_new_york_stays_at_nine_across_both_changes() -> None:
    spring = successor("FREQ=DAILY", datetime(2025, 3, 8, 14, tzinfo=UTC), "America/New_York")
    assert spring == Successor(datetime(2025, 3, 9, 13, tzinfo=UTC), "FREQ=DAILY")
    autumn = successor("FREQ=DAILY", datetime(2025, 11, 1, 13, tzinfo=UTC), "America/New_York")
    assert autumn == Successor(datetime(2025, 11, 2, 14, tzinfo=UTC), "FREQ=DAILY")


def test_the_same_rule_in_utc_keeps_the_utc_hour() -> None:
    step = successor("FREQ=WEEKLY;BYDAY=MO", datetime(2025, 3, 24, 8, tzinfo=UTC), "UTC")
    assert step == Successor(datetime(2025, 3, 31, 8, tzinfo=UTC), "FREQ=WEEKLY;BYDAY=MO")


def test_a_time_in_the_spring_forward_gap_falls_due_after_the_gap() -> None:
    """02:30 does not happen on 30 March 2025 in Berlin: read with the winter offset (RFC 5545,
    zoneinfo fold=0) it is 01:30 UTC, 03:30 local; the next step goes on from there."""
    gap = successor("FREQ=DAILY", datetime(2025, 3, 29, 1, 30, tzinfo=UTC), "Europe/Berlin")
    assert gap == Successor(datetime(2025, 3, 30, 1, 30, tzinfo=UTC), "FREQ=DAILY")
    assert wall_clock(gap.due_at, BERLIN) == (3, 30, 0)
    after = successor(gap.recurrence, gap.due_at, "Europe/Berlin")
    assert after is not None
    assert after.due_at == datetime(2025, 3, 31, 1, 30, tzinfo=UTC)
    assert wall_clock(after.due_at, BERLIN) == (3, 30, 0)


def test_a_repeated_local_time_is_the_first_of_the_two() -> None:
    """01:30 happens twice on 2 November 2025 in New York: the occurrence is the EDT one."""
    step = successor("FREQ=DAILY", datetime(2025, 11, 1, 5, 30, tzinfo=UTC), "America/New_York")
    assert step == Successor(datetime(2025, 11, 2, 5, 30, tzinfo=UTC), "FREQ=DAILY")


def test_a_due_date_in_the_second_repeated_hour_recurs_at_the_same_wall_clock_time() -> None:
    second_0130 = datetime(2025, 11, 2, 6, 30, tzinfo=UTC)  # 01:30 EST, after the 01:30 EDT
    step = successor("FREQ=DAILY", second_0130, "America/New_York")
    assert step == Successor(datetime(2025, 11, 3, 6, 30, tzinfo=UTC), "FREQ=DAILY")


def test_monthly_on_the_31st_skips_months_without_one() -> None:
    berlin = "Europe/Berlin"
    jan = datetime(2025, 1, 31, 8, tzinfo=UTC)  # 09:00 CET
    march = successor("FREQ=MONTHLY;BYMONTHDAY=31", jan, berlin)
    assert march == Successor(datetime(2025, 3, 31, 7, tzinfo=UTC), "FREQ=MONTHLY;BYMONTHDAY=31")
    may = successor("FREQ=MONTHLY;BYMONTHDAY=31", march.due_at, berlin)
    assert may is not None
    assert may.due_at == datetime(2025, 5, 31, 7, tzinfo=UTC)
    # Without BYMONTHDAY dateutil takes the day from DTSTART: the same.
    plain = successor("FREQ=MONTHLY", jan, berlin)
    assert plain is not None
    assert plain.due_at == march.due_at
    # The last day of every month is BYMONTHDAY=-1.
    last = successor("FREQ=MONTHLY;BYMONTHDAY=-1", jan, berlin)
    assert last is not None
    assert last.due_at == datetime(2025, 2, 28, 8, tzinfo=UTC)


def test_yearly_on_29_february_waits_for_the_next_leap_year() -> None:
    step = successor("FREQ=YEARLY", datetime(2024, 2, 29, 9, tzinfo=UTC), "UTC")
    assert step == Successor(datetime(2028, 2, 29, 9, tzinfo=UTC), "FREQ=YEARLY")


def test_weekly_with_an_interval_and_several_days_counts_weeks_from_monday() -> None:
    rule = "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU,TU"
    tuesday = datetime(2025, 1, 7, 9, tzinfo=UTC)
    sunday = successor(rule, tuesday, "UTC")
    assert sunday is not None
    assert sunday.due_at == datetime(2025, 1, 12, 9, tzinfo=UTC)  # the same Monday-based week
    after = successor(rule, sunday.due_at, "UTC")
    assert after is not None
    assert after.due_at == datetime(2025, 1, 21, 9, tzinfo=UTC)  # two weeks on


def test_count_is_decremented_and_one_is_the_last() -> None:
    start = datetime(2025, 1, 1, 9, tzinfo=UTC)
    step = successor("FREQ=DAILY;COUNT=2", start, "UTC")
    assert step == Successor(datetime(2025, 1, 2, 9, tzinfo=UTC), "FREQ=DAILY;COUNT=1")
    assert successor(step.recurrence, step.due_at, "UTC") is None


def test_count_counts_a_due_date_the_rule_would_not_produce() -> None:
    """RFC 5545: DTSTART is the first occurrence even off the rule (dateutil disagrees)."""
    wednesday = datetime(2025, 1, 1, 9, tzinfo=UTC)
    assert successor("FREQ=WEEKLY;BYDAY=MO;COUNT=1", wednesday, "UTC") is None
    step = successor("FREQ=WEEKLY;BYDAY=MO;COUNT=2", wednesday, "UTC")
    assert step == Successor(datetime(2025, 1, 6, 9, tzinfo=UTC), "FREQ=WEEKLY;BYDAY=MO;COUNT=1")


def test_until_is_inclusive() -> None:
    start = datetime(2025, 1, 1, 9, tzinfo=UTC)
    rule = "FREQ=DAILY;UNTIL=20250102T090000Z"
    assert successor(rule, start, "UTC") == Successor(datetime(2025, 1, 2, 9, tzinfo=UTC), rule)
    assert successor("FREQ=DAILY;UNTIL=20250102T085959Z", start, "UTC") is None
    assert successor("FREQ=DAILY;UNTIL=20200101T000000Z", start, "UTC") is None


def test_microseconds_are_dropped() -> None:
    step = successor("FREQ=DAILY", datetime(2025, 1, 1, 9, 0, 0, 999_999, tzinfo=UTC), "UTC")
    assert step is not None
    assert step.due_at == datetime(2025, 1, 2, 9, tzinfo=UTC)


def test_a_non_utc_due_at_is_the_same_instant() -> None:
    due_at = datetime(2025, 3, 24, 9, tzinfo=BERLIN)
    step = successor("FREQ=WEEKLY", due_at, "Europe/Berlin")
    assert step is not None
    assert step.due_at == datetime(2025, 3, 31, 7, tzinfo=UTC)
    assert step.due_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("rule", "local_start", "expected"),
    [
        # dateutil would scan to year 9999 for these; the answer is the same, at once.
        ("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=31", datetime(2025, 4, 10, 9), None),
        ("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=-31,31", datetime(2025, 6, 10, 9), None),
        ("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=30,31", datetime(2025, 2, 10, 9), None),
        ("FREQ=MONTHLY;INTERVAL=48;BYMONTHDAY=29", datetime(2025, 2, 10, 9), None),
        # ... and their neighbours that do recur.
        ("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=30,31", datetime(2025, 4, 10, 9), (2025, 4, 30)),
        ("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=29", datetime(2025, 2, 10, 9), (2028, 2, 29)),
        ("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=-29", datetime(2025, 2, 10, 9), (2028, 2, 1)),
        ("FREQ=MONTHLY;INTERVAL=48;BYMONTHDAY=29", datetime(2024, 2, 10, 9), (2024, 2, 29)),
        ("FREQ=MONTHLY;INTERVAL=24;BYMONTHDAY=29", datetime(2025, 2, 10, 9), None),  # odd years
        ("FREQ=MONTHLY;INTERVAL=11;BYMONTHDAY=31", datetime(2025, 4, 10, 9), (2026, 3, 31)),
        ("FREQ=MONTHLY;INTERVAL=12", datetime(2025, 4, 10, 9), (2026, 4, 10)),
        ("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=1,31", datetime(2025, 4, 10, 9), (2026, 4, 1)),
    ],
)
def test_rules_that_never_recur_in_their_month(
    rule: str, local_start: datetime, expected: tuple[int, int, int] | None
) -> None:
    due_at = local_start.replace(tzinfo=BERLIN).astimezone(UTC)
    step = successor(rule, due_at, "Europe/Berlin")
    if expected is None:
        assert step is None
    else:
        assert step is not None
        assert step.due_at.astimezone(BERLIN) == datetime(*expected, 9, tzinfo=BERLIN)
    parts = parse_parts(normalize_rule(rule))
    dtstart = due_at.astimezone(BERLIN)
    dateutils = parts.series(dtstart).after(dtstart)
    assert (None if step is None else step.due_at) == (
        None if dateutils is None else dateutils.astimezone(UTC)
    )


def parse_parts(text: str) -> Parts:
    """The Parts of a normalized rule (for comparing with dateutil)."""
    raw = dict(part.split("=") for part in text.split(";"))
    return Parts(
        freq=raw["FREQ"],
        interval=int(raw["INTERVAL"]) if "INTERVAL" in raw else None,
        byday=tuple(raw["BYDAY"].split(",")) if "BYDAY" in raw else (),
        bymonthday=tuple(map(int, raw["BYMONTHDAY"].split(","))) if "BYMONTHDAY" in raw else (),
        count=int(raw["COUNT"]) if "COUNT" in raw else None,
        until=(
            datetime.strptime(raw["UNTIL"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            if "UNTIL" in raw
            else None
        ),
    )


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY",
        "FREQ=DAILY;INTERVAL=1000",
        "FREQ=WEEKLY;BYDAY=MO,SU",
        "FREQ=WEEKLY;INTERVAL=1000;BYDAY=MO,SU",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        "FREQ=MONTHLY;INTERVAL=1000;BYMONTHDAY=31",
        "FREQ=YEARLY",
        "FREQ=YEARLY;INTERVAL=1000",
        "FREQ=DAILY;COUNT=5",
        "FREQ=DAILY;UNTIL=99991231T235959Z",
    ],
)
@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    "due_at",
    [
        datetime.max.replace(tzinfo=UTC),
        datetime(9999, 12, 31, tzinfo=UTC),
        datetime(9999, 12, 20, tzinfo=UTC),
        datetime(9999, 2, 28, tzinfo=UTC),
        datetime.min.replace(tzinfo=UTC),
    ],
)
def test_the_end_of_the_calendar_ends_the_series_quietly(
    rule: str, zone: str, due_at: datetime
) -> None:
    step = successor(rule, due_at, zone)
    if step is not None:
        assert step.due_at > due_at


# -------------------------------------------------------------------------------- properties


@st.composite
def rule_parts(
    draw: st.DrawFn, start: datetime, *, count: bool = True, until: bool = True
) -> Parts:
    """Rules of every kind; UNTIL near `start` so that it matters."""
    freq = draw(st.sampled_from(list(FREQS)))
    interval = draw(
        st.none() | st.integers(1, 4) | st.sampled_from([12, 24, 48]) | st.integers(1, 1000)
    )
    byday: tuple[str, ...] = ()
    bymonthday: tuple[int, ...] = ()
    if freq == "WEEKLY":
        byday = tuple(draw(st.lists(st.sampled_from(DAYS), unique=True, max_size=7)))
    if freq == "MONTHLY":
        days = st.sampled_from([1, 15, 28, 29, 30, 31, -1, -29, -31]) | st.integers(-31, 31)
        bymonthday = tuple(
            draw(st.lists(days.filter(lambda day: day != 0), unique=True, max_size=4))
        )
    ends = ["none"] + ["count"] * count + ["until"] * until
    end = draw(st.sampled_from(ends))
    return Parts(
        freq=freq,
        interval=interval,
        byday=byday,
        bymonthday=bymonthday,
        count=draw(st.integers(1, 5) | st.integers(1, 100_000)) if end == "count" else None,
        until=(
            (start + draw(st.timedeltas(timedelta(days=-30), timedelta(days=3 * 366)))).replace(
                microsecond=0
            )
            if end == "until"
            else None
        ),
    )


starts = st.one_of(
    st.sampled_from(SPECIAL_CASES),
    st.tuples(
        st.sampled_from(ZONES),
        st.datetimes(datetime(1950, 1, 1), datetime(2150, 1, 1), timezones=st.just(UTC)),
    ),
)


@st.composite
def spellings(draw: st.DrawFn, parts: Parts) -> str:
    """The rule as a client might write it: parts in any order, any character in any case."""
    pairs = draw(st.permutations(parts.pairs()))
    text = ";".join(f"{key}={value}" for key, value in pairs)
    lower = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(char.lower() if low else char for char, low in zip(text, lower, strict=True))


Case = tuple[Parts, str, datetime, str]  # parts, zone, due_at, the rule as written


@st.composite
def cases(draw: st.DrawFn) -> Case:
    zone, due_at = draw(starts)
    parts = draw(rule_parts(due_at))
    return parts, zone, due_at, draw(spellings(parts))


def plain(parts: Parts, zone: str, due_at: datetime) -> Case:
    return parts, zone, due_at, parts.text


@settings(max_examples=200, deadline=None)
@given(case=cases())
@example(
    plain(Parts("WEEKLY", byday=("MO",)), "Europe/Berlin", datetime(2025, 3, 24, 8, tzinfo=UTC))
)
@example(plain(Parts("DAILY"), "Europe/Berlin", datetime(2025, 3, 29, 1, 30, tzinfo=UTC)))  # gap
@example(
    plain(Parts("DAILY", count=2), "America/New_York", datetime(2025, 11, 1, 5, 30, tzinfo=UTC))
)
@example(plain(Parts("MONTHLY", bymonthday=(31,)), "UTC", datetime(2025, 1, 31, 9, tzinfo=UTC)))
@example(
    plain(Parts("MONTHLY", interval=12, bymonthday=(31,)), "UTC", datetime(2025, 4, 1, tzinfo=UTC))
)
@example(plain(Parts("YEARLY"), "Asia/Kolkata", datetime(2024, 2, 29, 3, tzinfo=UTC)))
@example(plain(Parts("DAILY"), "Australia/Lord_Howe", datetime(2025, 10, 3, 15, 45, tzinfo=UTC)))
def test_successor_is_dateutils_next_occurrence(case: Case) -> None:
    parts, zone_name, due_at, written = case
    zone = ZoneInfo(zone_name)
    rule = normalize_rule(written)
    assert rule == parts.text
    assert normalize_rule(rule) == rule

    step = successor(rule, due_at, zone_name)

    dtstart = due_at.astimezone(zone)
    expected = None if parts.count == 1 else parts.series(dtstart).after(dtstart)
    if expected is None:
        assert step is None
        return
    assert step is not None
    assert step.due_at == expected.astimezone(UTC)
    assert step.due_at.tzinfo is UTC
    assert step.due_at > due_at
    if parts.until is not None:
        assert step.due_at <= parts.until
    next_count = None if parts.count is None else parts.count - 1
    assert step.recurrence == parts._replace(count=next_count).text
    if exists(expected):  # else it was moved past the gap
        assert wall_clock(step.due_at, zone) == (dtstart.hour, dtstart.minute, dtstart.second)


def follow(rule: str, due_at: datetime, zone: str, limit: int) -> list[Successor]:
    """The todos that completing one after another creates, up to `limit` of them."""
    chain: list[Successor] = []
    while len(chain) < limit and (step := successor(rule, due_at, zone)) is not None:
        assert step.due_at > due_at
        chain.append(step)
        due_at, rule = step
    return chain


@st.composite
def counted(draw: st.DrawFn) -> tuple[Parts, str, datetime]:
    zone, due_at = draw(starts)
    parts = draw(rule_parts(due_at, until=False))
    # Few enough occurrences, near enough together, to stay well before year 9999.
    return (
        parts._replace(
            count=draw(st.integers(1, 12)), interval=draw(st.none() | st.integers(1, 30))
        ),
        zone,
        due_at,
    )


@settings(max_examples=100, deadline=None)
@given(case=counted())
def test_count_n_makes_n_todos_in_all(case: tuple[Parts, str, datetime]) -> None:
    parts, zone_name, due_at = case
    assert parts.count is not None
    chain = follow(parts.text, due_at, zone_name, limit=parts.count + 1)

    # The dates the unbounded series has next; a rule can run out by itself (the 31st of
    # April every year), and then the chain ends early.
    dtstart = due_at.astimezone(ZoneInfo(zone_name))
    ahead = list(
        itertools.islice(
            parts._replace(count=None).series(dtstart).xafter(dtstart), parts.count - 1
        )
    )
    assert len(chain) == len(ahead) <= parts.count - 1
    for step, occurrence in zip(chain, ahead, strict=True):
        assert step.due_at.astimezone(ZoneInfo(zone_name)).date() == occurrence.date()
    counts = [parse_parts(step.recurrence).count for step in chain]
    assert counts == list(range(parts.count - 1, parts.count - 1 - len(chain), -1))


@st.composite
def bounded(draw: st.DrawFn) -> tuple[Parts, str, datetime]:
    zone, due_at = draw(starts)
    parts = draw(rule_parts(due_at, count=False, until=False))
    interval = draw(st.none() | st.integers(1, 5))
    period = {"DAILY": 1, "WEEKLY": 7, "MONTHLY": 31, "YEARLY": 366}[parts.freq]
    # Up to a dozen periods, so the chain ends within a few dozen steps.
    span = timedelta(days=period * (interval or 1) * draw(st.integers(0, 12)))
    until = due_at + span + draw(st.timedeltas(timedelta(days=-2), timedelta(days=2)))
    return parts._replace(interval=interval, until=until.replace(microsecond=0)), zone, due_at


@settings(max_examples=100, deadline=None)
@given(case=bounded())
def test_until_bounds_the_chain(case: tuple[Parts, str, datetime]) -> None:
    parts, zone_name, due_at = case
    assert parts.until is not None
    chain = follow(parts.text, due_at, zone_name, limit=200)
    assert len(chain) < 200  # it stopped by itself
    assert all(step.due_at <= parts.until for step in chain)
    assert all(step.recurrence == parts.text for step in chain)
    # It stopped where dateutil has nothing after the last one.
    last = (chain[-1].due_at if chain else due_at).astimezone(ZoneInfo(zone_name))
    assert parts.series(last).after(last) is None
