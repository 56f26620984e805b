"""Cron schedules as the CronJob controller reads them: robfig/cron v3 ``ParseStandard`` and ``Next``.

``parse_schedule(text, zone)`` accepts what the API server's validation accepts (five fields with ranges,
steps, lists and month/day names, the ``@hourly`` ... ``@yearly`` descriptors, ``@every <duration>``, an
optional ``TZ=``/``CRON_TZ=`` prefix) and returns a ``Schedule`` whose ``next(t)`` is the first activation
strictly after ``t``. Field parsing and its error texts are shared with validation (``api.validation.cron``).

``next`` walks wall-clock fields in the schedule's zone the way robfig does, so daylight-saving days behave
as on a real cluster: a time inside a spring-forward gap is skipped that day, and one inside a fall-back
overlap fires in both hours. Hours and minutes advance as absolute durations; days and months advance on
the calendar. A schedule that never fires (``0 0 30 2 *``) gives None.

``most_recent_schedule_time`` and ``next_schedule_delay`` are the controller's bookkeeping around it
(``pkg/controller/cronjob/utils.go``): missed start times, the more-than-100-missed rule, the requeue delay.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import Enum

from nanokube.api.validation import cron

# Padding added to requeue delays against clock skew, as kube's nextScheduleDelta.
NEXT_SCHEDULE_DELTA = 0.1
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")


class ScheduleError(ValueError):
    pass


class Missed(Enum):
    NONE = "none"
    FEW = "few"
    MANY = "many"


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday, as cron counts
    days_star: bool
    weekdays_star: bool
    zone: tzinfo
    every: timedelta | None = None

    def next(self, after: datetime) -> datetime | None:
        """The first activation strictly after ``after`` (in ``after``'s zone), None if none within 5 years."""
        if self.every is not None:
            return after + self.every - timedelta(microseconds=after.microsecond)
        origin = after.tzinfo or UTC
        t = _add(after.astimezone(self.zone), timedelta(seconds=1, microseconds=-after.microsecond))
        found = self._walk(t)
        return None if found is None else found.astimezone(origin)

    def _walk(self, t: datetime) -> datetime | None:
        zone = self.zone
        added = False
        year_limit = t.year + 5
        while True:
            if t.year > year_limit:
                return None
            wrapped = False
            while t.month not in self.months:
                if not added:
                    added = True
                    t = _go_date(datetime(t.year, t.month, 1), zone)
                t = _add_date(t, months=1)
                if t.month == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not self._day_matches(t):
                if not added:
                    added = True
                    t = _go_date(datetime(t.year, t.month, t.day), zone)
                t = _add_date(t, days=1)
                if t.hour != 0:  # a DST shift moved midnight: bring it back
                    t = _add(t, timedelta(hours=24 - t.hour) if t.hour > 12 else timedelta(hours=-t.hour))
                if t.day == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while t.hour not in self.hours:
                if not added:
                    added = True
                    t = _go_date(datetime(t.year, t.month, t.day, t.hour), zone)
                t = _add(t, timedelta(hours=1))
                if t.hour == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while t.minute not in self.minutes:
                if not added:
                    added = True
                    t = t.replace(second=0, microsecond=0)
                t = _add(t, timedelta(minutes=1))
                if t.minute == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while t.second != 0:
                if not added:
                    added = True
                    t = t.replace(microsecond=0)
                t = _add(t, timedelta(seconds=1))
                if t.second == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            return t

    def _day_matches(self, t: datetime) -> bool:
        day = t.day in self.days
        weekday = (t.weekday() + 1) % 7 in self.weekdays
        if self.days_star or self.weekdays_star:
            return day and weekday
        return day or weekday


def parse_schedule(text: str, zone: tzinfo | None = None) -> Schedule:
    """Parse a CronJob schedule; ``zone`` is where it is read (a ``TZ=`` prefix wins). Raises ScheduleError."""
    fields = text.split()
    if fields and fields[0].startswith(("TZ=", "CRON_TZ=")):
        name = fields[0].split("=", 1)[1]
        try:
            zone = zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
            raise ScheduleError(f"provided bad location {name}: unknown time zone {name}") from err
        fields = fields[1:]
    zone = zone or UTC
    body = " ".join(fields)
    try:
        sets = cron.parse(text)
    except cron.CronError as err:
        raise ScheduleError(str(err)) from err
    if sets is None:
        return _every(body[len("@every "):].strip(), zone)
    exprs = cron.DESCRIPTORS.get(body, body).split()
    frozen = [frozenset(s) for s in sets]
    return Schedule(frozen[0], frozen[1], frozen[2], frozen[3], frozen[4], _is_star(exprs[2]), _is_star(exprs[4]),
                    zone)


def _is_star(expr: str) -> bool:
    """robfig's star bit: a part spanning the whole range with no step above 1 (``*``, ``?``, ``*/1``)."""
    for part in expr.split(","):
        range_and_step = part.split("/")
        if range_and_step[0] in ("*", "?") and (len(range_and_step) == 1 or range_and_step[1] in ("0", "1")):
            return True
    return False


def _every(duration: str, zone: tzinfo) -> Schedule:
    seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(duration))
    whole = max(int(seconds), 1)  # robfig rounds down to seconds, at least one
    empty: frozenset[int] = frozenset()
    return Schedule(empty, empty, empty, empty, empty, False, False, zone, timedelta(seconds=whole))


def local_zone() -> tzinfo:
    """The zone a schedule without ``timeZone`` is read in: this process's local zone, as kube-controller-
    manager uses its own (``TZ``, then /etc/localtime, else UTC)."""
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return zoneinfo.ZoneInfo(name)
        with open("/etc/localtime", "rb") as f:
            return zoneinfo.ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError, zoneinfo.ZoneInfoNotFoundError):
        return UTC


# -- time arithmetic in Go's terms ------------------------------------------------------------------------
def _add(t: datetime, delta: timedelta) -> datetime:
    """Go's ``t.Add``: an absolute duration, whatever the wall clock does meanwhile."""
    assert t.tzinfo is not None
    return (t.astimezone(UTC) + delta).astimezone(t.tzinfo)


def _offset_at(instant: datetime, zone: tzinfo) -> timedelta:
    return instant.astimezone(zone).utcoffset() or timedelta(0)


def _go_date(wall: datetime, zone: tzinfo) -> datetime:
    """Go's ``time.Date`` for a naive wall-clock time: the offset in force at the wall time read as UTC,
    corrected once if the resulting instant lies in another offset's period (how Go settles gaps and overlaps)."""
    as_utc = wall.replace(tzinfo=UTC)
    offset = _offset_at(as_utc, zone)
    if offset:
        corrected = _offset_at(as_utc - offset, zone)
        if corrected != offset:
            offset = corrected
    return (as_utc - offset).astimezone(zone)


def _add_date(t: datetime, *, months: int = 0, days: int = 0) -> datetime:
    """Go's ``t.AddDate``: calendar arithmetic on the wall clock, normalising overflowing months and days."""
    month_index = t.year * 12 + (t.month - 1) + months
    year, month = divmod(month_index, 12)
    first = datetime(year, month + 1, 1, t.hour, t.minute, t.second, t.microsecond)
    return _go_date(first + timedelta(days=t.day - 1 + days), t.tzinfo or UTC)


# -- the controller's bookkeeping -------------------------------------------------------------------------
def most_recent_schedule_time(schedule: Schedule, earliest: datetime, now: datetime,
                              starting_deadline: int | None) -> tuple[datetime, datetime | None, Missed]:
    """(earliest time considered, the latest activation in (earliest, now] or None, how many were missed).

    ``earliest`` is the last schedule time or the CronJob's creation; a starting deadline moves it up to
    ``now - deadline``. Raises ScheduleError for schedules that are valid but never fire twice."""
    if starting_deadline is not None:
        earliest = max(earliest, now - timedelta(seconds=starting_deadline))
    t1 = schedule.next(earliest)
    t2 = schedule.next(t1) if t1 is not None else None
    if t1 is not None and now < t1:
        return earliest, None, Missed.NONE
    if t2 is not None and now < t2:
        return earliest, t1, Missed.NONE
    between = round((t2 - t1).total_seconds()) if t1 is not None and t2 is not None else 0
    if t1 is None or between < 1:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    missed = int((now - t1).total_seconds()) // between + 1
    most_recent: datetime | None = None
    t: datetime | None = schedule.next(t1 + timedelta(seconds=(missed - 2) * between))
    while t is not None and t <= now:
        most_recent = t
        t = schedule.next(t)
    return earliest, most_recent, Missed.MANY if missed > 100 else Missed.FEW


def next_schedule_delay(schedule: Schedule, earliest: datetime, now: datetime) -> float | None:
    """Seconds until the controller should look again: the activation after the most recent one, plus a
    small padding; None when the schedule never fires again."""
    try:
        base, most_recent, missed = most_recent_schedule_time(schedule, earliest, now, None)
    except ScheduleError:
        most_recent = now
    else:
        if most_recent is None:
            most_recent = base if missed is Missed.NONE else now
    upcoming = schedule.next(most_recent)
    if upcoming is None:
        return None
    return (upcoming - now).total_seconds() + NEXT_SCHEDULE_DELTA
