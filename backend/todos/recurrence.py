"""Recurring todos: the supported RRULE subset, IANA time zones, and the next occurrence.

A recurring todo carries an RFC 5545 RRULE value and an IANA time zone. Completing it creates a
successor due at the rule's next occurrence after the completed todo's `due_at`, with that
`due_at`, as wall-clock time in the zone, for DTSTART: "every Monday 09:00 Europe/Berlin" stays
at 09:00 local across daylight-saving changes, so its UTC instant moves by an hour.

The expansion is python-dateutil's. This module narrows the input to a subset whose meaning is
plain and cheap to compute, and settles the edges dateutil leaves to its caller:

* A local time that does not exist (the spring-forward gap, e.g. 02:30 on the day Berlin skips
  from 02:00 to 03:00) is read with the offset in force before the gap (zoneinfo's fold=0, which
  is what RFC 5545 section 3.3.5 prescribes): it falls due at 03:30 local. Only `due_at` is
  stored, so that 03:30 is the DTSTART of the next step: the rest of the series stays at 03:30.
* A local time that happens twice (fall-back) is the first of the two instants (fold=0, RFC 5545
  again); a `due_at` in the repeated hour still recurs at the same wall-clock time.
* COUNT counts the todo's own `due_at` as one occurrence (RFC 5545: DTSTART always counts, even
  if the rule would not produce it; dateutil does not count it then, so COUNT=1 is decided
  here): COUNT=1 means there is no successor, and the successor's rule carries COUNT - 1.
* UNTIL is inclusive and compared as an instant.
* Occurrences have whole seconds (the resolution of RFC 5545 date-times): dateutil drops
  `due_at`'s microseconds.
* A successor beyond year 9999 (or any date outside `datetime`'s range) ends the series.
"""

import functools
import re
import zoneinfo
from calendar import isleap, monthrange
from dataclasses import dataclass, replace
from datetime import MAXYEAR, UTC, datetime
from typing import NamedTuple

from dateutil.rrule import MO, rrule, rrulestr

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
MAX_INTERVAL = 1000
MAX_COUNT = 100_000

_KEYS = ("FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL")  # also the normal order
_DIGITS = re.compile(r"[0-9]+")
_MONTH_DAY = re.compile(r"([+-]?)([0-9]+)")
_ORDINAL = re.compile(r"[+-]?[0-9]+")
_UNTIL = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")
# Any aware instant will do: dateutil insists that DTSTART be aware when UTC is, and every
# successor() replaces it anyway.
_PLACEHOLDER_START = datetime(2000, 1, 3, tzinfo=UTC)
# Files in the zoneinfo directories that are not zones one should be able to pick.
_NOT_ZONES = frozenset({"localtime", "posixrules"})


class InvalidRecurrence(ValueError):
    """A recurrence rule outside the supported subset; str() is a message for the client."""


class Successor(NamedTuple):
    """What the todo created by completing a recurring one inherits from the rule."""

    due_at: datetime  # aware, in UTC
    recurrence: str  # the successor's rule (COUNT decremented; otherwise unchanged)


@dataclass(frozen=True, slots=True)
class _Rule:
    """A validated rule, by part; `text` is its normal form."""

    freq: str
    interval: int | None
    byday: tuple[str, ...]
    bymonthday: tuple[int, ...]
    count: int | None
    until: str | None  # YYYYMMDDTHHMMSSZ

    @property
    def text(self) -> str:
        parts = [f"FREQ={self.freq}"]
        if self.interval is not None:
            parts.append(f"INTERVAL={self.interval}")
        if self.byday:
            parts.append("BYDAY=" + ",".join(self.byday))
        if self.bymonthday:
            parts.append("BYMONTHDAY=" + ",".join(map(str, self.bymonthday)))
        if self.count is not None:
            parts.append(f"COUNT={self.count}")
        if self.until is not None:
            parts.append(f"UNTIL={self.until}")
        return ";".join(parts)


class _Compiled(NamedTuple):
    rule: _Rule
    template: rrule  # dateutil's parse of rule.text; successor() gives it the real DTSTART


def normalize_rule(value: str) -> str:
    """Validate an RRULE value of the supported subset; return its canonical form.

    Raises InvalidRecurrence. The canonical form is what gets stored, so equal rules compare
    equal and successor() never meets anything else."""
    text = _parse(value).text
    _compile(text)  # dateutil must agree; this also warms the cache for successor()
    return text


def check_time_zone(name: str) -> str:
    """`name` if it is a known IANA zone; raises ValueError("unknown time zone ...") otherwise.

    Checking against the list of zones, rather than trying ZoneInfo(name), keeps out file
    paths, "localtime" and other things the zoneinfo loader would accept."""
    if name not in _known_zones():
        raise ValueError(f"unknown time zone {_show(name)}")
    return name


def successor(rule: str, due_at: datetime, time_zone: str) -> Successor | None:
    """The next occurrence of normalized `rule` after aware `due_at`, in `time_zone`'s
    wall-clock; None when the series ends.

    `due_at` (the completed todo's) is the series' DTSTART, so the successor keeps its local
    time of day; see the module docstring for gaps, repeated hours, COUNT and the year 9999."""
    if due_at.utcoffset() is None:
        raise ValueError("due_at must be timezone-aware")
    compiled = _compile(rule)
    zone = zoneinfo.ZoneInfo(check_time_zone(time_zone))  # ZoneInfo caches its instances
    count = compiled.rule.count
    if count == 1:
        return None
    try:
        start = due_at.astimezone(zone)
    except OverflowError:  # the local date is beyond year 9999 (or before year 1)
        return None
    if _never_again(compiled.rule, start):
        return None
    instant = due_at.astimezone(UTC)
    try:
        # dateutil compares occurrences with `start` by wall-clock time (they share tzinfo).
        # The next day's wall-clock time is a later instant in every zone's history, even
        # across a gap (read with the offset before it); the instant check is only a guard.
        for occurrence in compiled.template.replace(dtstart=start).xafter(start):
            next_due = occurrence.astimezone(UTC)
            if next_due > instant:
                break
        else:
            return None
    except (OverflowError, ValueError):  # dateutil or astimezone went beyond year 9999
        return None
    rest = compiled.rule if count is None else replace(compiled.rule, count=count - 1)
    return Successor(next_due, rest.text)


def _parse(value: str) -> _Rule:
    """Validate by hand: dateutil would accept far more (and some of it silently wrong)."""
    if not value:
        raise InvalidRecurrence("recurrence must not be empty")
    if not value.isascii():  # str.upper() would make "I" of a dotless i, "SS" of an eszett
        raise InvalidRecurrence("recurrence must be ASCII")
    if value.upper().startswith("RRULE:"):
        raise InvalidRecurrence("give the rule's value without the 'RRULE:' prefix")
    raw: dict[str, str] = {}
    for part in value.split(";"):
        if not part:
            raise InvalidRecurrence("recurrence has an empty part (';;', or ';' at an end)")
        key, equals, item = part.partition("=")
        if not equals:
            raise InvalidRecurrence(f"recurrence part {_show(part)} is not KEY=VALUE")
        key = key.upper()
        if key not in _KEYS:
            raise InvalidRecurrence(
                f"unknown recurrence part {_show(key)}; supported: {', '.join(_KEYS)}"
            )
        if key in raw:
            raise InvalidRecurrence(f"{key} is given more than once")
        raw[key] = item.upper()

    freq = raw.get("FREQ")
    if freq is None:
        raise InvalidRecurrence("FREQ is required")
    if freq not in FREQUENCIES:
        raise InvalidRecurrence(f"FREQ must be one of {', '.join(FREQUENCIES)}, not {_show(freq)}")
    if "BYDAY" in raw and freq != "WEEKLY":
        raise InvalidRecurrence("BYDAY is only allowed with FREQ=WEEKLY")
    if "BYMONTHDAY" in raw and freq != "MONTHLY":
        raise InvalidRecurrence("BYMONTHDAY is only allowed with FREQ=MONTHLY")
    if "COUNT" in raw and "UNTIL" in raw:
        raise InvalidRecurrence("COUNT and UNTIL cannot both be given")

    interval = raw.get("INTERVAL")
    count = raw.get("COUNT")
    until = raw.get("UNTIL")
    return _Rule(
        freq=freq,
        interval=None if interval is None else _integer("INTERVAL", interval, MAX_INTERVAL),
        byday=_weekdays(raw.get("BYDAY")),
        bymonthday=_month_days(raw.get("BYMONTHDAY")),
        count=None if count is None else _integer("COUNT", count, MAX_COUNT),
        until=None if until is None else _until(until),
    )


def _integer(key: str, value: str, maximum: int) -> int:
    digits = value.lstrip("0")
    # The length check keeps int() away from huge strings (and below its digit limit).
    if _DIGITS.fullmatch(value) and len(digits) <= len(str(maximum)):
        number = int(value)
        if 1 <= number <= maximum:
            return number
    raise InvalidRecurrence(f"{key} must be an integer from 1 to {maximum}, not {_show(value)}")


def _weekdays(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    days = value.split(",")
    for day in days:
        if day[-2:] in WEEKDAYS and _ORDINAL.fullmatch(day[:-2]):
            raise InvalidRecurrence(
                f"BYDAY takes weekdays without a numeric prefix (such as the first Monday of "
                f"a month), not {_show(day)}"
            )
        if day not in WEEKDAYS:
            raise InvalidRecurrence(f"BYDAY must list {','.join(WEEKDAYS)}, not {_show(day)}")
    _no_repeats("BYDAY", days)
    return tuple(days)


def _month_days(value: str | None) -> tuple[int, ...]:
    if value is None:
        return ()
    days: list[int] = []
    for item in value.split(","):
        match = _MONTH_DAY.fullmatch(item)
        day = int(match[2]) if match and len(match[2].lstrip("0")) <= 2 else 0
        if not 1 <= day <= 31:
            raise InvalidRecurrence(
                f"BYMONTHDAY must list days from 1 to 31 or -31 to -1, not {_show(item)}"
            )
        days.append(-day if match and match[1] == "-" else day)
    _no_repeats("BYMONTHDAY", days)
    return tuple(days)


def _no_repeats(key: str, items: list[str] | list[int]) -> None:
    seen: set[str | int] = set()
    for item in items:
        if item in seen:
            raise InvalidRecurrence(f"{key} lists {item} more than once")
        seen.add(item)


def _until(value: str) -> str:
    match = _UNTIL.fullmatch(value)
    if not match:
        raise InvalidRecurrence(
            f"UNTIL must be a UTC date-time of the form YYYYMMDDTHHMMSSZ, not {_show(value)}"
        )
    try:
        year, month, day, hour, minute, second = map(int, match.groups())
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise InvalidRecurrence(f"UNTIL is not a valid date-time: {_show(value)}") from None
    return value


@functools.lru_cache(maxsize=1024)
def _compile(rule: str) -> _Compiled:
    """Parse once per distinct rule: dateutil's parse (UNTIL's above all) is the slow part."""
    parsed = _parse(rule)
    try:
        template = rrulestr(parsed.text, dtstart=_PLACEHOLDER_START)
    except ValueError as exc:  # not expected: _parse admits only what dateutil understands
        raise InvalidRecurrence(f"recurrence not understood: {exc}") from None
    if not isinstance(template, rrule):  # pragma: no cover - one RRULE value is one rrule
        raise TypeError(f"rrulestr gave {type(template).__name__} for an RRULE value")
    # dateutil's default week start is calendar.firstweekday(), process-global state;
    # RFC 5545's default is Monday (it matters for WEEKLY with INTERVAL and several BYDAY).
    return _Compiled(parsed, template.replace(wkst=MO))


def _never_again(rule: _Rule, start: datetime) -> bool:
    """Whether a MONTHLY rule with INTERVAL a whole number of years (so always the month of
    `start`) asks only for days that month never has, e.g. the 31st of April.

    dateutil would scan every year up to 9999 before saying so (some 0.1 s); this answers
    up front. Every other rule of the subset matches within a few periods."""
    interval = rule.interval or 1
    if rule.freq != "MONTHLY" or not rule.bymonthday or interval % 12:
        return False
    nearest = min(abs(day) for day in rule.bymonthday)  # -n exists when n does
    if start.month != 2:
        return nearest > monthrange(2001, start.month)[1]
    if nearest != 29:
        return nearest > 29
    # February, the 29th at best: is any year the rule visits a leap year?
    return not any(isleap(year) for year in range(start.year, MAXYEAR + 1, interval // 12))


def time_zones() -> list[str]:
    """Every name check_time_zone() accepts, sorted (for the OpenAPI document)."""
    return sorted(_known_zones())


@functools.cache
def _known_zones() -> frozenset[str]:
    """The IANA zone names, read once: available_timezones() walks the zoneinfo directories."""
    return frozenset(zoneinfo.available_timezones() - _NOT_ZONES)


def _show(value: str) -> str:
    """Quote a piece of client input for a message, not too long."""
    return repr(value if len(value) <= 40 else value[:37] + "...")
