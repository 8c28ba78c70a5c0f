"""Business-hours calendars, so SLA targets count only the time a team is actually open.

Opening hours are local wall-clock times, because that is how a team states them, but every
answer is an instant in UTC, because that is what deadlines are compared against. Each local
interval of each local date is turned into a pair of UTC instants, so daylight-saving changes
fall out of the time zone database: a 09:00-17:00 day is eight hours on any date, and a day
whose clock skips an hour simply does not have that hour.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_DAY = timedelta(days=1)
_MICROSECOND = timedelta(microseconds=1)
_HORIZON = timedelta(days=3700)


class Weekday(StrEnum):
    """In ``date.weekday()`` order, so a date finds its weekday by position."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


_WEEKDAYS = tuple(Weekday)


class Interval(BaseModel):
    """Opening hours within one local day, open at ``start`` and closed again at ``end``.

    ``time`` cannot say 24:00, so an ``end`` of 00:00 means midnight at the end of the day:
    22:00-00:00 is the last two hours, and 00:00-00:00 the whole day.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time
    end: time

    @model_validator(mode="after")
    def _check_order(self) -> Self:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError(
                "interval times are local wall-clock times; the calendar's time zone applies"
            )
        if _end_offset(self) <= _since_midnight(self.start):
            raise ValueError(
                f"interval end {_label(self.end)} must be after its start {_label(self.start)}"
                " (an end of 00:00 means midnight at the end of the day)"
            )
        return self


class Calendar(BaseModel):
    """When a team is open: weekly hours in one time zone, less whole-day holidays.

    A weekday missing from ``week`` is closed. Each day's intervals are kept sorted by start.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: str
    week: dict[Weekday, list[Interval]]
    holidays: list[date] = Field(default_factory=list)

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as error:
            raise ValueError(f"unknown IANA time zone {value!r}") from error
        return value

    @field_validator("week")
    @classmethod
    def _sorted_without_overlaps(
        cls, week: dict[Weekday, list[Interval]]
    ) -> dict[Weekday, list[Interval]]:
        ordered = {day: sorted(intervals, key=lambda i: i.start) for day, intervals in week.items()}
        for day, intervals in ordered.items():
            for earlier, later in pairwise(intervals):
                if _end_offset(earlier) > _since_midnight(later.start):
                    raise ValueError(
                        f"intervals on {day} overlap: {_label(earlier.start)}-"
                        f"{_label(earlier.end)} and {_label(later.start)}-{_label(later.end)}"
                    )
        return ordered

    @classmethod
    def always(cls) -> Calendar:
        """Round the clock, for SLA targets that count plain elapsed time."""
        return cls(
            time_zone="UTC",
            week={day: [Interval(start=time(0), end=time(0))] for day in Weekday},
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def add_business_time(calendar: Calendar, start: datetime, duration: timedelta) -> datetime:
    """The UTC instant at which ``duration`` of open time has passed since ``start``.

    Counting starts at the next opening when ``start`` is outside business hours, so a zero
    duration gives ``start`` itself only while the calendar is open. A duration that ends
    exactly at a closing gives the closing, not the next opening.
    """
    if duration < timedelta(0):
        raise ValueError(f"business time to add must not be negative, got {duration}")
    if not any(calendar.week.values()):
        raise ValueError("the calendar never opens: no weekday has any opening hours")
    begin = _as_utc(start)
    remaining = duration
    last_day = _local_date(calendar, begin) + _HORIZON
    for opens, closes in _open_spans(calendar, begin, last_day):
        if remaining <= closes - opens:
            return opens + remaining
        remaining -= closes - opens
    raise ValueError(
        f"{duration} of business time does not fit in the {_HORIZON.days} days"
        f" after {start.isoformat()}: the calendar, less its holidays, opens too seldom"
    )


def business_time_between(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    """The open time between two instants, so elapsed SLA time can be shown and checked."""
    begin, finish = _as_utc(start), _as_utc(end)
    elapsed = timedelta(0)
    if finish <= begin:
        return elapsed
    for opens, closes in _open_spans(calendar, begin, _local_date(calendar, finish) + _DAY):
        if opens >= finish:
            break
        elapsed += min(closes, finish) - opens
    return elapsed


def is_open(calendar: Calendar, moment: datetime) -> bool:
    """Whether the calendar counts ``moment``: opening instants do, closing instants do not."""
    instant = _as_utc(moment)
    last_day = _local_date(calendar, instant) + _DAY
    first_span = next(_open_spans(calendar, instant, last_day), None)
    return first_span is not None and first_span[0] == instant


def _open_spans(
    calendar: Calendar, since: datetime, last_day: date
) -> Iterator[tuple[datetime, datetime]]:
    """Open time from ``since`` on, as non-empty UTC spans in order, through local ``last_day``.

    It begins a day before the local date of ``since`` because a clock that falls back across
    midnight puts some instants under the date before the one whose hours contain them.
    """
    zone = calendar.zone
    holidays = frozenset(calendar.holidays)
    day = _local_date(calendar, since) - _DAY
    while day <= last_day:
        intervals = [] if day in holidays else calendar.week.get(_WEEKDAYS[day.weekday()], [])
        midnight = datetime.combine(day, time())
        for interval in intervals:
            opens = max(since, _first_instant(midnight + _since_midnight(interval.start), zone))
            closes = _first_instant(midnight + _end_offset(interval), zone)
            if opens < closes:
                yield opens, closes
        day += _DAY


def _first_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant at which the local clock reads ``wall`` or later, in UTC.

    A repeated wall time thus means its first occurrence, and a skipped one the moment the
    clock jumps past it, which is what makes the skipped span simply missing.
    """
    late = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall_clock(late, zone) == wall:
        return late
    early = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    while late - early > _MICROSECOND:
        middle = early + (late - early) / 2
        if _wall_clock(middle, zone) >= wall:
            late = middle
        else:
            early = middle
    return late


def _wall_clock(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _local_date(calendar: Calendar, instant: datetime) -> date:
    return instant.astimezone(calendar.zone).date()


def _as_utc(moment: datetime) -> datetime:
    """A naive datetime would silently be read in the server's own zone, so it is refused."""
    if moment.utcoffset() is None:
        raise ValueError(f"datetime {moment.isoformat()} must be timezone-aware")
    return moment.astimezone(UTC)


def _since_midnight(moment: time) -> timedelta:
    return timedelta(
        hours=moment.hour,
        minutes=moment.minute,
        seconds=moment.second,
        microseconds=moment.microsecond,
    )


def _end_offset(interval: Interval) -> timedelta:
    """00:00 as an end is the midnight that closes the day, not the one that opens it."""
    return _DAY if interval.end == time(0) else _since_midnight(interval.end)


def _label(moment: time) -> str:
    return moment.isoformat(timespec="minutes")
