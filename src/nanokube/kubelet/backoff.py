"""Crash-loop back-off, as client-go's ``flowcontrol.Backoff`` that the kubelet uses for container restarts.

The first restart of a failed container is immediate; while a container keeps failing each further restart
waits twice as long as the one before (10 s, 20 s, 40 s... capped at 5 min by default), counted from when the
container last finished. A container that has not failed for twice the cap starts over from the initial delay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Entry:
    delay: float
    last_update: float


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String`` (to the microsecond): ``10s``, ``1m20s``, ``5m0s``, ``1.5ms``, ``0s``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3f}".rstrip("0").rstrip(".") + "µs"
    if seconds < 1:
        return f"{seconds * 1e3:.6f}".rstrip("0").rstrip(".") + "ms"
    if seconds < 60:
        text = f"{seconds:.6f}".rstrip("0").rstrip(".")
        return f"{text}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s"


class Backoff:
    """Delays per (pod, container); ``forget(pod)`` drops a Pod's entries at once."""

    def __init__(self, initial: float = 10.0, maximum: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.initial = initial
        self.maximum = maximum
        self.clock = clock
        self._entries: dict[str, dict[str, _Entry]] = {}

    def _expired(self, at: float, entry: _Entry) -> bool:
        return at - entry.last_update > self.maximum * 2

    def get(self, pod: str, container: str) -> float:
        entry = self._entries.get(pod, {}).get(container)
        return entry.delay if entry is not None else 0.0

    def in_backoff_since(self, pod: str, container: str, event_time: float) -> bool:
        """True while fewer than the current delay's seconds have passed since ``event_time``."""
        entry = self._entries.get(pod, {}).get(container)
        if entry is None:
            return False
        now = self.clock()
        if self._expired(now, entry):
            return False
        return now - event_time < entry.delay

    def next(self, pod: str, container: str, event_time: float) -> None:
        """Record a restart: the next failure waits the initial delay, or twice the last one."""
        entries = self._entries.setdefault(pod, {})
        entry = entries.get(container)
        if entry is None or self._expired(event_time, entry):
            entry = entries[container] = _Entry(self.initial, 0.0)
        else:
            entry.delay = min(entry.delay * 2, self.maximum)
        entry.last_update = self.clock()

    def forget(self, pod: str) -> None:
        self._entries.pop(pod, None)
