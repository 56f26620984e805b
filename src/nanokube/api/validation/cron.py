"""Cron schedules as the CronJob API accepts them (robfig/cron v3 ``ParseStandard``), with its error texts.

Five fields (minute hour day-of-month month day-of-week) with ``*``/``?``, ranges ``a-b``, steps ``/n``, lists
``a,b`` and month/day names, or a descriptor (``@hourly``, ``@every 5m`` ...). ``parse_error`` returns None
for a valid schedule or the message Kubernetes puts after ``spec.schedule: Invalid value: "...":``. The
CronJob controller can reuse ``parse`` to compute run times from the returned sets.
"""

from __future__ import annotations

import re

# (minimum, maximum, names) per field, in order.
_BOUNDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                            "nov", "dec"))}),
    (0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}),
)
DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


class CronError(ValueError):
    pass


def parse(schedule: str) -> list[set[int]] | None:
    """The allowed values of the five fields, or None for ``@every`` schedules. Raises CronError."""
    if not schedule:
        raise CronError("empty spec string")
    fields = schedule.split()
    if fields and (fields[0].startswith("TZ=") or fields[0].startswith("CRON_TZ=")):
        fields = fields[1:]
    text = " ".join(fields)
    if text.startswith("@"):
        if text.startswith("@every "):
            duration = text[len("@every "):].strip()
            if not _DURATION.match(duration):
                raise CronError(f'failed to parse duration {text}: time: invalid duration "{duration}"')
            return None
        if text not in DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {text}")
        fields = DESCRIPTORS[text].split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    return [_field(expr, *bounds) for expr, bounds in zip(fields, _BOUNDS, strict=True)]


def parse_error(schedule: str) -> str | None:
    try:
        parse(schedule)
    except CronError as err:
        return str(err)
    return None


def _field(expr: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for part in expr.split(","):
        values |= _range(part, low, high, names)
    return values


def _range(expr: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    if low_and_high[0] in ("*", "?"):
        start, end = low, high
    else:
        start = _int_or_name(low_and_high[0], names)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _int_or_name(low_and_high[1], names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _int(range_and_step[1])
        if single and low_and_high[0] not in ("*", "?"):
            end = high
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < low:
        raise CronError(f"beginning of range ({start}) below minimum ({low}): {expr}")
    if end > high:
        raise CronError(f"end of range ({end}) above maximum ({high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step))


def _int_or_name(expr: str, names: dict[str, int]) -> int:
    if expr.lower() in names:
        return names[expr.lower()]
    return _int(expr)


def _int(expr: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", expr):
        raise CronError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax')
    number = int(expr)
    if number < 0:
        raise CronError(f"negative number ({number}) not allowed: {expr}")
    return number
