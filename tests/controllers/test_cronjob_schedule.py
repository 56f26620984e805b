"""Cron schedules read as robfig/cron v3 reads them for kube's CronJob controller, DST days included."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest

from nanokube.controllers.cronjob.schedule import (
    Missed,
    ScheduleError,
    most_recent_schedule_time,
    next_schedule_delay,
    parse_schedule,
)

NY = zoneinfo.ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(("schedule", "after", "expected"), [
    ("*/15 * * * *", utc(2024, 1, 1, 0, 7, 13), utc(2024, 1, 1, 0, 15)),
    ("*/15 * * * *", utc(2024, 1, 1, 0, 15), utc(2024, 1, 1, 0, 30)),  # strictly after
    ("5 * * * *", utc(2024, 1, 1, 23, 30), utc(2024, 1, 2, 0, 5)),
    ("0 0 * * *", utc(2024, 2, 28, 12, 0), utc(2024, 2, 29, 0, 0)),  # leap day
    ("@hourly", utc(2024, 1, 1, 10, 59, 59), utc(2024, 1, 1, 11, 0)),
    ("@daily", utc(2024, 1, 1, 10, 0), utc(2024, 1, 2, 0, 0)),
    ("@midnight", utc(2024, 1, 1, 10, 0), utc(2024, 1, 2, 0, 0)),
    ("@weekly", utc(2024, 1, 1, 10, 0), utc(2024, 1, 7, 0, 0)),  # next Sunday
    ("@monthly", utc(2024, 1, 31, 10, 0), utc(2024, 2, 1, 0, 0)),
    ("@yearly", utc(2024, 1, 1, 0, 0), utc(2025, 1, 1, 0, 0)),
    ("@annually", utc(2024, 6, 1, 0, 0), utc(2025, 1, 1, 0, 0)),
    ("0 9 * * mon-fri", utc(2024, 1, 5, 10, 0), utc(2024, 1, 8, 9, 0)),  # Friday after 9 -> Monday
    ("0 9 * * MON-FRI", utc(2024, 1, 5, 10, 0), utc(2024, 1, 8, 9, 0)),
    ("0 0 1,15 * *", utc(2024, 1, 2, 0, 0), utc(2024, 1, 15, 0, 0)),
    ("0 0 * feb *", utc(2024, 3, 1, 0, 0), utc(2025, 2, 1, 0, 0)),
    ("0 12 * * 0", utc(2024, 1, 1, 0, 0), utc(2024, 1, 7, 12, 0)),
    ("0 0 13 * 5", utc(2024, 1, 1, 0, 0), utc(2024, 1, 5, 0, 0)),  # day-of-month OR Friday
    ("0 0 13 * *", utc(2024, 1, 1, 0, 0), utc(2024, 1, 13, 0, 0)),
    ("0 0 */10 * *", utc(2024, 1, 1, 0, 0), utc(2024, 1, 11, 0, 0)),  # 1, 11, 21, 31
    ("0 0 31 * *", utc(2024, 4, 1, 0, 0), utc(2024, 5, 31, 0, 0)),  # April has no 31st
    ("10-20/5 * * * *", utc(2024, 1, 1, 0, 16), utc(2024, 1, 1, 0, 20)),
    ("0 0 30 2 *", utc(2024, 1, 1, 0, 0), None),  # never
    ("@every 90s", utc(2024, 1, 1, 0, 7, 13), utc(2024, 1, 1, 0, 8, 43)),
    ("@every 1h30m", utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 1, 30)),
    ("TZ=Asia/Tokyo 0 9 * * *", utc(2024, 1, 1, 0, 0), utc(2024, 1, 2, 0, 0)),
    ("CRON_TZ=Asia/Tokyo 0 9 * * *", utc(2024, 1, 1, 1, 0), utc(2024, 1, 2, 0, 0)),
])
def test_next(schedule: str, after: datetime, expected: datetime | None) -> None:
    assert parse_schedule(schedule).next(after) == expected


@pytest.mark.parametrize(("schedule", "after", "expected"), [
    # Spring forward (2024-03-10, 02:00 EST -> 03:00 EDT): 02:30 does not exist, that day is skipped.
    ("30 2 * * *", datetime(2024, 3, 9, 12, 0, tzinfo=NY), datetime(2024, 3, 11, 2, 30, tzinfo=NY)),
    ("0 3 * * *", datetime(2024, 3, 9, 12, 0, tzinfo=NY), datetime(2024, 3, 10, 3, 0, tzinfo=NY)),
    ("0 * * * *", datetime(2024, 3, 10, 1, 30, tzinfo=NY), datetime(2024, 3, 10, 3, 0, tzinfo=NY)),
    # Fall back (2024-11-03, 02:00 EDT -> 01:00 EST): 01:30 happens twice and fires twice.
    ("30 1 * * *", datetime(2024, 11, 2, 12, 0, tzinfo=NY), datetime(2024, 11, 3, 5, 30, tzinfo=UTC)),
    ("30 1 * * *", datetime(2024, 11, 3, 5, 30, tzinfo=UTC), datetime(2024, 11, 3, 6, 30, tzinfo=UTC)),
    ("30 1 * * *", datetime(2024, 11, 3, 6, 30, tzinfo=UTC), datetime(2024, 11, 4, 6, 30, tzinfo=UTC)),
    ("0 0 * * *", datetime(2024, 11, 2, 12, 0, tzinfo=NY), datetime(2024, 11, 3, 4, 0, tzinfo=UTC)),
    ("0 0 * * *", datetime(2024, 11, 3, 4, 0, tzinfo=UTC), datetime(2024, 11, 4, 5, 0, tzinfo=UTC)),
])
def test_next_across_daylight_saving(schedule: str, after: datetime, expected: datetime) -> None:
    # Compared in UTC: Python never finds an ambiguous wall time equal to a time in another zone.
    found = parse_schedule(schedule, NY).next(after)
    assert found is not None and found.astimezone(UTC) == expected.astimezone(UTC)


def test_result_keeps_the_callers_zone() -> None:
    nxt = parse_schedule("0 9 * * *", NY).next(utc(2024, 7, 1, 0, 0))
    assert nxt == datetime(2024, 7, 1, 9, 0, tzinfo=NY) and nxt is not None and nxt.tzinfo is UTC


@pytest.mark.parametrize(("schedule", "message"), [
    ("", "empty spec string"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("61 * * * *", "end of range (61) above maximum (59): 61"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("TZ=Mars/Olympus * * * * *", "provided bad location Mars/Olympus: unknown time zone Mars/Olympus"),
])
def test_parse_errors(schedule: str, message: str) -> None:
    with pytest.raises(ScheduleError) as err:
        parse_schedule(schedule)
    assert str(err.value) == message


def test_most_recent_schedule_time() -> None:
    every_minute = parse_schedule("* * * * *")
    start = utc(2024, 1, 1, 0, 0, 30)
    assert most_recent_schedule_time(every_minute, start, utc(2024, 1, 1, 0, 0, 50), None)[1:] == (None, Missed.NONE)
    assert most_recent_schedule_time(every_minute, start, utc(2024, 1, 1, 0, 1, 10), None)[1:] == (
        utc(2024, 1, 1, 0, 1), Missed.NONE)
    assert most_recent_schedule_time(every_minute, start, utc(2024, 1, 1, 0, 5, 10), None)[1:] == (
        utc(2024, 1, 1, 0, 5), Missed.FEW)
    # More than 100 missed: still the most recent one, flagged.
    assert most_recent_schedule_time(every_minute, start, utc(2024, 1, 1, 3, 0, 10), None)[1:] == (
        utc(2024, 1, 1, 3, 0), Missed.MANY)
    # A starting deadline ignores activations older than it.
    assert most_recent_schedule_time(every_minute, start, utc(2024, 1, 1, 3, 0, 30), 20)[1] is None
    assert most_recent_schedule_time(every_minute, start, utc(2024, 1, 1, 3, 0, 10), 20)[1] == utc(2024, 1, 1, 3, 0)
    with pytest.raises(ScheduleError):
        most_recent_schedule_time(parse_schedule("0 0 30 2 *"), start, utc(2030, 1, 1), None)


def test_next_schedule_delay() -> None:
    hourly = parse_schedule("0 * * * *")
    delay = next_schedule_delay(hourly, utc(2024, 1, 1, 0, 10), utc(2024, 1, 1, 0, 50))
    assert delay == pytest.approx(timedelta(minutes=10).total_seconds() + 0.1)
    # Missed activations: the next one after now.
    delay = next_schedule_delay(hourly, utc(2024, 1, 1, 0, 10), utc(2024, 1, 1, 5, 30))
    assert delay == pytest.approx(timedelta(minutes=30).total_seconds() + 0.1)
    assert next_schedule_delay(parse_schedule("0 0 30 2 *"), utc(2024, 1, 1), utc(2024, 1, 2)) is None
