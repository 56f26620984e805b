"""Reading container logs written in the CRI log format, the way the kubelet serves ``pods/log``.

A log file holds one line per output line: ``<RFC3339Nano timestamp> <stdout|stderr> <F|P> <text>``, where
``P`` marks a part of a long line that continues on the next entry (the native runtime's shim writes these).
``read_log`` turns such a file back into the container's output with the kubelet's options: the last N lines,
lines since a time, a timestamp before each line (formatted as Go's RFC3339Nano, trailing zeros trimmed, as
``kubectl logs --timestamps`` shows), a byte limit, and ``follow``, which keeps reading until the container
has exited and its log is drained. Files are read in blocks with plain reads (local page-cache I/O).
"""

from __future__ import annotations

import asyncio
import calendar
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from .interface import LogOptions

BLOCK = 64 * 1024


@dataclass(frozen=True)
class LogEntry:
    timestamp: str  # as written: 2026-11-27T18:00:26.123456789Z
    stream: str
    partial: bool
    content: bytes

    @property
    def time(self) -> float:
        return parse_time(self.timestamp)


def parse_line(line: bytes) -> LogEntry | None:
    """One CRI log line (without its newline); None if it is not one."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    stamp, stream, tag = parts[0], parts[1], parts[2]
    content = parts[3] if len(parts) == 4 else b""
    if stream not in (b"stdout", b"stderr") or tag not in (b"F", b"P"):
        return None
    return LogEntry(stamp.decode(), stream.decode(), tag == b"P", content)


def parse_time(stamp: str) -> float:
    """RFC3339 (UTC ``Z`` or a numeric offset, any fraction) to epoch seconds."""
    offset = 0
    if stamp.endswith("Z"):
        body = stamp[:-1]
    else:
        body, sign, zone = stamp[:-6], stamp[-6], stamp[-5:]
        offset = (int(zone[:2]) * 3600 + int(zone[3:]) * 60) * (1 if sign == "+" else -1)
    main, _, fraction = body.partition(".")
    date, _, clock = main.partition("T")
    year, month, day = (int(x) for x in date.split("-"))
    hour, minute, second = (int(x) for x in clock.split(":"))
    whole = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    return whole + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def go_rfc3339nano(stamp: str) -> str:
    """Go's time.RFC3339Nano rendering of a UTC timestamp: fraction without trailing zeros."""
    if not stamp.endswith("Z") or "." not in stamp:
        return stamp
    main, _, fraction = stamp[:-1].partition(".")
    fraction = fraction.rstrip("0")
    return f"{main}.{fraction}Z" if fraction else f"{main}Z"


def _full_line_at(fd: int, offset: int) -> bool:
    head = os.pread(fd, 64, offset).split(b"\n", 1)[0]
    entry = parse_line(head if head.count(b" ") >= 3 else head + b" ")
    return entry is not None and not entry.partial


def tail_offset(fd: int, lines: int) -> int:
    """The file offset where the last ``lines`` complete lines begin (with the ``P`` parts before them)."""
    size = os.fstat(fd).st_size
    if lines <= 0:
        return size
    found = 0
    end = -1  # the newline ending the raw line being looked at
    pos = size
    while pos > 0:
        start = max(0, pos - BLOCK)
        chunk = os.pread(fd, pos - start, start)
        i = len(chunk)
        while (i := chunk.rfind(b"\n", 0, i)) >= 0:
            newline = start + i
            if end >= 0 and _full_line_at(fd, newline + 1):
                if found == lines:
                    return end + 1
                found += 1
            end = newline
        pos = start
    if end >= 0 and found == lines and _full_line_at(fd, 0):
        return end + 1
    return 0


async def read_log(path: str, options: LogOptions, finished: Callable[[], Awaitable[bool]], *,
                   poll: float = 0.1) -> AsyncIterator[bytes]:
    """The container's output from a CRI log file, per ``options``; with ``follow`` it waits for new lines
    until ``finished()`` says the container has exited (its log is then read to the end)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        offset = tail_offset(fd, options.tail_lines) if options.tail_lines is not None else 0
        budget = options.limit_bytes if options.limit_bytes is not None else -1
        pending = b""  # an unterminated raw line at the end of the file
        line_parts: list[bytes] = []
        while True:
            data = os.pread(fd, BLOCK, offset)
            if not data:
                if not options.follow:
                    return
                done = await finished()
                more = os.pread(fd, 1, offset)
                if done and not more:
                    return
                if not more:
                    await asyncio.sleep(poll)
                continue
            offset += len(data)
            raw_lines = (pending + data).split(b"\n")
            pending = raw_lines.pop()
            out: list[bytes] = []
            for raw in raw_lines:
                entry = parse_line(raw)
                if entry is None:
                    continue
                if options.since_time is not None and entry.time < options.since_time:
                    continue
                text = entry.content if entry.partial else entry.content + b"\n"
                if options.timestamps and not line_parts:
                    text = go_rfc3339nano(entry.timestamp).encode() + b" " + text
                line_parts.append(text)
                if not entry.partial:
                    out.append(b"".join(line_parts))
                    line_parts = []
            chunk = b"".join(out)
            if budget >= 0:
                chunk = chunk[:budget]
                budget -= len(chunk)
            if chunk:
                yield chunk
            if budget == 0:
                return
    finally:
        os.close(fd)
