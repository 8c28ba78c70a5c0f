from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from casedesk.domain.automation.calendar import (
    Calendar,
    Interval,
    Weekday,
    add_business_time,
    business_time_between,
    is_open,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WORKDAYS = (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)
WHIT_MONDAY_2024 = date(2024, 5, 20)


def hours(start: int, end: int, *, start_minute: int = 0, end_minute: int = 0) -> Interval:
    return Interval(start=time(start, start_minute), end=time(end % 24, end_minute))


def berlin_calendar(
    *intervals: Interval,
    days: Iterable[Weekday] = WORKDAYS,
    holidays: Iterable[date] = (),
) -> Calendar:
    return Calendar(
        time_zone="Europe/Berlin",
        week={day: list(intervals) for day in days},
        holidays=list(holidays),
    )


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


NINE_TO_FIVE = berlin_calendar(hours(9, 17))
EVERY_HOUR_IN_BERLIN = berlin_calendar(hours(0, 24), days=Weekday)


@pytest.mark.parametrize(
    ("start", "duration"),
    [
        (datetime(2024, 6, 8, 10, 30, tzinfo=UTC), timedelta(0)),
        (datetime(2024, 6, 8, 10, 30, tzinfo=UTC), timedelta(hours=5)),
        (datetime(2024, 3, 9, 23, 59, tzinfo=NEW_YORK), timedelta(days=3, minutes=5)),
        (berlin(2024, 10, 26, 12), timedelta(days=400, seconds=1)),
    ],
)
def test_an_always_open_calendar_is_plain_addition(start: datetime, duration: timedelta) -> None:
    calendar = Calendar.always()

    deadline = add_business_time(calendar, start, duration)

    assert deadline == start.astimezone(UTC) + duration
    assert deadline.tzinfo is UTC
    assert business_time_between(calendar, start, deadline) == duration
    assert is_open(calendar, start)


def test_four_hours_from_friday_afternoon_land_on_monday_late_morning() -> None:
    deadline = add_business_time(NINE_TO_FIVE, berlin(2024, 6, 7, 15), timedelta(hours=4))

    assert deadline == berlin(2024, 6, 10, 11)
    assert deadline.tzinfo is UTC


def test_counting_from_a_saturday_begins_at_the_monday_opening() -> None:
    saturday = berlin(2024, 6, 8, 10)

    assert add_business_time(NINE_TO_FIVE, saturday, timedelta(hours=1)) == berlin(2024, 6, 10, 10)
    assert add_business_time(NINE_TO_FIVE, saturday, timedelta(0)) == berlin(2024, 6, 10, 9)


def test_zero_duration_within_business_hours_is_the_start_itself() -> None:
    start = berlin(2024, 6, 7, 15, 20)

    assert add_business_time(NINE_TO_FIVE, start, timedelta(0)) == start


def test_a_duration_that_ends_at_closing_time_gives_the_closing() -> None:
    deadline = add_business_time(NINE_TO_FIVE, berlin(2024, 6, 7, 15), timedelta(hours=2))

    assert deadline == berlin(2024, 6, 7, 17)


def test_a_holiday_monday_pushes_the_deadline_to_tuesday() -> None:
    calendar = berlin_calendar(hours(9, 17), holidays=[WHIT_MONDAY_2024])

    deadline = add_business_time(calendar, berlin(2024, 5, 17, 15), timedelta(hours=4))

    assert deadline == berlin(2024, 5, 21, 11)


def test_the_lunch_break_is_not_counted() -> None:
    calendar = berlin_calendar(hours(9, 12), hours(13, 17))

    assert add_business_time(calendar, berlin(2024, 6, 10, 11), timedelta(hours=2)) == berlin(
        2024, 6, 10, 14
    )
    assert business_time_between(calendar, berlin(2024, 6, 10), berlin(2024, 6, 11)) == timedelta(
        hours=7
    )


def test_the_skipped_hour_of_spring_forward_does_not_count() -> None:
    start = berlin(2024, 3, 31)

    deadline = add_business_time(EVERY_HOUR_IN_BERLIN, start, timedelta(hours=24))

    assert deadline - start == timedelta(hours=24)
    assert deadline == berlin(2024, 4, 1, 1)
    assert business_time_between(EVERY_HOUR_IN_BERLIN, start, berlin(2024, 4, 1)) == timedelta(
        hours=23
    )


def test_the_repeated_hour_of_fall_back_counts_twice() -> None:
    start = berlin(2024, 10, 27)

    deadline = add_business_time(EVERY_HOUR_IN_BERLIN, start, timedelta(hours=24))

    assert deadline - start == timedelta(hours=24)
    assert deadline == berlin(2024, 10, 27, 23)
    assert business_time_between(EVERY_HOUR_IN_BERLIN, start, berlin(2024, 10, 28)) == timedelta(
        hours=25
    )


@pytest.mark.parametrize("sunday", [date(2024, 3, 31), date(2024, 10, 27)])
def test_nine_to_five_is_eight_hours_on_a_daylight_saving_change_day(sunday: date) -> None:
    calendar = berlin_calendar(hours(9, 17), days=[Weekday.SUN])
    day_start = datetime.combine(sunday, time(), tzinfo=BERLIN)

    open_time = business_time_between(calendar, day_start, day_start + timedelta(days=1))

    assert open_time == timedelta(hours=8)


def test_hours_that_end_inside_the_skipped_hour_end_when_the_clock_jumps() -> None:
    calendar = berlin_calendar(hours(0, 2, end_minute=30), days=[Weekday.SUN])

    open_time = business_time_between(calendar, berlin(2024, 3, 31), berlin(2024, 4, 1))

    assert open_time == timedelta(hours=2)


def test_hours_that_start_inside_the_skipped_hour_open_when_the_clock_jumps() -> None:
    calendar = berlin_calendar(hours(2, 4, start_minute=30), days=[Weekday.SUN])

    opening = add_business_time(calendar, berlin(2024, 3, 30, 12), timedelta(0))

    assert opening == berlin(2024, 3, 31, 3)
    assert business_time_between(calendar, opening, berlin(2024, 4, 1)) == timedelta(hours=1)


def test_hours_that_start_inside_the_repeated_hour_open_at_its_first_occurrence() -> None:
    calendar = berlin_calendar(hours(2, 4, start_minute=30), days=[Weekday.SUN])

    opening = add_business_time(calendar, berlin(2024, 10, 26, 12), timedelta(0))

    assert opening == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
    assert business_time_between(calendar, opening, berlin(2024, 10, 28)) == timedelta(
        hours=2, minutes=30
    )


def test_no_business_time_passes_over_a_weekend() -> None:
    friday_closing, monday_opening = berlin(2024, 6, 7, 17), berlin(2024, 6, 10, 9)

    assert business_time_between(NINE_TO_FIVE, friday_closing, monday_opening) == timedelta(0)


def test_no_business_time_passes_when_the_end_is_not_after_the_start() -> None:
    start = berlin(2024, 6, 10, 12)

    assert business_time_between(NINE_TO_FIVE, start, start) == timedelta(0)
    assert business_time_between(NINE_TO_FIVE, start, start - timedelta(hours=2)) == timedelta(0)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (berlin(2024, 6, 10, 9), True),
        (datetime(2024, 6, 10, 14, 59, tzinfo=UTC), True),
        (berlin(2024, 6, 10, 17), False),
        (berlin(2024, 6, 10, 8, 59), False),
        (berlin(2024, 6, 8, 12), False),
        (berlin(2024, 5, 20, 12), False),
    ],
)
def test_is_open_counts_openings_but_not_closings_weekends_or_holidays(
    moment: datetime, expected: bool
) -> None:
    calendar = berlin_calendar(hours(9, 17), holidays=[WHIT_MONDAY_2024])

    assert is_open(calendar, moment) is expected


ROUND_TRIP_CALENDARS = {
    "always": Calendar.always(),
    "office_with_lunch_and_holidays": berlin_calendar(
        hours(9, 12),
        hours(13, 17, end_minute=30),
        holidays=[WHIT_MONDAY_2024, date(2024, 12, 25), date(2024, 12, 26)],
    ),
    "every_hour_in_berlin": EVERY_HOUR_IN_BERLIN,
    "around_the_skipped_hour": berlin_calendar(
        hours(1, 2, start_minute=30, end_minute=30),
        hours(2, 3, start_minute=45, end_minute=30),
        days=Weekday,
    ),
    "new_york_evenings_and_weekends": Calendar(
        time_zone="America/New_York",
        week={
            Weekday.TUE: [hours(22, 24)],
            Weekday.SAT: [hours(0, 1), hours(7, 19, start_minute=15)],
            Weekday.SUN: [hours(0, 24)],
        },
    ),
}


@pytest.mark.parametrize("name", ROUND_TRIP_CALENDARS)
@settings(max_examples=150, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2023, 1, 1),
        max_value=datetime(2026, 12, 31),
        timezones=st.sampled_from([UTC, BERLIN, NEW_YORK]),
    ),
    minutes=st.integers(min_value=0, max_value=60 * 24 * 90),
)
def test_adding_business_time_and_measuring_it_agree(
    name: str, start: datetime, minutes: int
) -> None:
    calendar = ROUND_TRIP_CALENDARS[name]
    duration = timedelta(minutes=minutes)

    deadline = add_business_time(calendar, start, duration)

    assert deadline >= start
    assert business_time_between(calendar, start, deadline) == duration
    opening = add_business_time(calendar, start, timedelta(0))
    assert is_open(calendar, start) is (opening == start.astimezone(UTC))


def test_the_week_may_be_given_as_plain_data_and_is_kept_sorted() -> None:
    calendar = Calendar.model_validate(
        {
            "time_zone": "Europe/Berlin",
            "week": {
                "mon": [{"start": "13:00", "end": "17:00"}, {"start": "09:00", "end": "13:00"}]
            },
            "holidays": ["2024-05-20"],
        }
    )

    assert calendar.week == {Weekday.MON: [hours(9, 13), hours(13, 17)]}
    assert calendar.holidays == [WHIT_MONDAY_2024]


def test_midnight_as_an_end_closes_the_day() -> None:
    calendar = berlin_calendar(hours(22, 24))

    open_time = business_time_between(calendar, berlin(2024, 6, 10), berlin(2024, 6, 11))

    assert open_time == timedelta(hours=2)


def test_an_unknown_time_zone_is_rejected() -> None:
    with pytest.raises(ValidationError) as raised:
        Calendar(time_zone="Europe/Atlantis", week={})

    assert [error["loc"] for error in raised.value.errors()] == [("time_zone",)]
    assert "Europe/Atlantis" in str(raised.value)


def test_overlapping_intervals_are_rejected() -> None:
    with pytest.raises(ValidationError, match="overlap") as raised:
        berlin_calendar(hours(9, 13), hours(12, 17))

    assert [error["loc"] for error in raised.value.errors()] == [("week",)]


@pytest.mark.parametrize(("start", "end"), [(time(17), time(9)), (time(9), time(9))])
def test_an_interval_must_end_after_it_starts(start: time, end: time) -> None:
    with pytest.raises(ValidationError, match="must be after its start"):
        Interval(start=start, end=end)


def test_interval_times_carry_no_time_zone() -> None:
    with pytest.raises(ValidationError, match="wall-clock"):
        Interval(start=time(9, tzinfo=UTC), end=time(17, tzinfo=UTC))


@pytest.mark.parametrize("week", [{}, {Weekday.MON: []}])
def test_a_calendar_that_never_opens_cannot_give_a_deadline(
    week: dict[Weekday, list[Interval]],
) -> None:
    calendar = Calendar(time_zone="UTC", week=week)

    with pytest.raises(ValueError, match="never opens"):
        add_business_time(calendar, datetime(2024, 6, 10, tzinfo=UTC), timedelta(hours=1))


def test_a_calendar_whose_open_days_are_all_holidays_gives_up_after_ten_years() -> None:
    mondays = [date(2024, 6, 10) + timedelta(weeks=week) for week in range(600)]
    calendar = berlin_calendar(hours(9, 17), days=[Weekday.MON], holidays=mondays)

    with pytest.raises(ValueError, match="does not fit"):
        add_business_time(calendar, berlin(2024, 6, 10), timedelta(hours=1))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_time(NINE_TO_FIVE, datetime(2024, 6, 10, 9), timedelta(hours=1))


def test_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_business_time(NINE_TO_FIVE, berlin(2024, 6, 10, 9), timedelta(minutes=-1))
