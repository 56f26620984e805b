"""Deciding what happens to a recorded Event before it is written, as client-go's EventCorrelator does.

``EventCorrelator.correlate(event)`` runs three steps over a core/v1 Event dict and says whether to create it,
patch an earlier one, or drop it:

- aggregation (``EventAggregator``): once 10 Events with the same source, involvedObject, type, reason and
  reporting controller/instance but different messages are seen within 10 minutes of each other, the 10th and
  later ones become one Event whose message is ``(combined from similar events): <latest message>``;
- de-duplication (``EventLogger``): an Event seen before under the same key (all of the above plus the message,
  or the aggregate key for a combined Event) bumps the earlier Event's ``count`` instead of making a new one;
- the spam filter (``SpamFilter``): a token bucket per (source, involvedObject), burst 25, refilled one token
  every 5 minutes; an Event finding it empty is dropped. It runs last, so dropped repeats still count and the
  next write that gets through carries the full count.

Everything here is pure and synchronous: no I/O, one injectable clock (epoch seconds) for intervals and
timestamps, and every cache is an LRU bounded at ``size`` keys so a long-running kubelet's memory stays flat.
The recorder (events.py) turns the outcome into a create, a patch or nothing.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

JSON = dict[str, Any]
Clock = Callable[[], float]
Key = tuple[str, ...]

CACHE_SIZE = 4096
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL_SECONDS = 600.0
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0
COMBINED_PREFIX = "(combined from similar events): "

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A dict holding at most ``size`` keys; reading or writing a key makes it the newest, the oldest go first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def _source(event: JSON) -> Key:
    source = event.get("source") or {}
    return (source.get("component", ""), source.get("host", ""))


def _involved(event: JSON, *, field_path: bool) -> Key:
    ref = event.get("involvedObject") or {}
    names = ("kind", "namespace", "name", "fieldPath", "uid", "apiVersion") if field_path else \
        ("kind", "namespace", "name", "uid", "apiVersion")
    return tuple(str(ref.get(n, "")) for n in names)


def event_key(event: JSON) -> Key:
    """Exact identity of an Event: source, involvedObject (with fieldPath), type, reason and message."""
    return (*_source(event), *_involved(event, field_path=True), event.get("type", ""), event.get("reason", ""),
            event.get("message", ""))


def spam_key(event: JSON) -> Key:
    """Who is talking about what: source and involvedObject (no fieldPath), the unit the spam filter limits."""
    return (*_source(event), *_involved(event, field_path=False))


def aggregate_key(event: JSON) -> tuple[Key, str]:
    """(group of similar Events, what tells them apart): everything but the message, and the message."""
    group = (*spam_key(event), event.get("type", ""), event.get("reason", ""),
             event.get("reportingComponent", ""), event.get("reportingInstance", ""))
    return group, event.get("message", "")


@dataclass
class TokenBucket:
    """``burst`` tokens to start with, refilled continuously at ``qps`` up to ``burst``."""

    burst: int
    qps: float
    tokens: float
    last: float

    def try_accept(self, now: float) -> bool:
        self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.last) * self.qps)
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class SpamFilter:
    """Limits each (source, involvedObject) to ``burst`` Events, then one per ``1/qps`` seconds."""

    def __init__(self, clock: Clock, *, burst: int = SPAM_BURST, qps: float = SPAM_QPS, size: int = CACHE_SIZE):
        self.clock = clock
        self.burst = burst
        self.qps = qps
        self._buckets: LRU[Key, TokenBucket] = LRU(size)

    def allow(self, event: JSON) -> bool:
        """True when the Event may be written; takes a token when it may."""
        key = spam_key(event)
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.burst, self.qps, float(self.burst), now)
        self._buckets.put(key, bucket)
        return bucket.try_accept(now)


@dataclass
class _Similar:
    messages: set[str] = field(default_factory=set)
    last: float = 0.0


class EventAggregator:
    """Folds many Events differing only by message into one combined Event per group."""

    def __init__(self, clock: Clock, *, max_events: int = AGGREGATE_MAX_EVENTS,
                 interval: float = AGGREGATE_INTERVAL_SECONDS, size: int = CACHE_SIZE) -> None:
        self.clock = clock
        self.max_events = max_events
        self.interval = interval
        self._groups: LRU[Key, _Similar] = LRU(size)

    def aggregate(self, event: JSON) -> tuple[JSON, Key]:
        """The Event to record and the key to de-duplicate it under: ``event`` itself under its exact key, or,
        once its group has ``max_events`` distinct messages within ``interval`` seconds of each other, a new
        combined Event under the group's key."""
        group, message = aggregate_key(event)
        now = self.clock()
        seen = self._groups.get(group)
        if seen is None or now - seen.last > self.interval:
            seen = _Similar()
        seen.messages.add(message)
        seen.last = now
        self._groups.put(group, seen)
        if len(seen.messages) < self.max_events:
            return event, event_key(event)
        # Keep the set below the limit: the messages seen first go on being recorded on their own (client-go
        # drops an arbitrary one; dropping the newest keeps this deterministic).
        seen.messages.discard(message)
        return combined(event), ("combined", *group)


def combined(event: JSON) -> JSON:
    """A fresh Event standing for ``event``'s group: same object, source, type and reason, count 1."""
    keep = ("apiVersion", "kind", "involvedObject", "type", "reason", "source", "firstTimestamp",
            "lastTimestamp", "reportingComponent", "reportingInstance")
    merged = {k: event[k] for k in keep if k in event}
    merged["metadata"] = dict(event.get("metadata") or {})
    merged["message"] = COMBINED_PREFIX + event.get("message", "")
    merged["count"] = 1
    return merged


@dataclass
class Observation:
    """What the server holds (or should hold) for a key: the Event's name, how many occurrences, since when."""

    namespace: str
    name: str
    count: int
    first_timestamp: str


class EventLogger:
    """Remembers, per de-duplication key, the Event written for it so repeats become count bumps."""

    def __init__(self, *, size: int = CACHE_SIZE) -> None:
        self._seen: LRU[Key, Observation] = LRU(size)

    def observe(self, event: JSON, key: Key) -> tuple[JSON, bool]:
        """``event`` as it should now stand and whether it repeats an earlier one (then name, count and
        firstTimestamp come from that one). The occurrence is remembered even if the Event is then dropped."""
        last = self._seen.get(key)
        observed = dict(event)
        if last is not None:
            observed["metadata"] = {**(event.get("metadata") or {}), "name": last.name, "namespace": last.namespace}
            observed["count"] = last.count + 1
            observed["firstTimestamp"] = last.first_timestamp
        meta = observed.get("metadata") or {}
        self._seen.put(key, Observation(meta.get("namespace", ""), meta.get("name", ""),
                                        int(observed.get("count") or 1), observed.get("firstTimestamp", "")))
        return observed, last is not None


@dataclass
class Correlated:
    """The outcome for one Event: drop it (``skip``), patch the Event named in ``event`` (``patch`` set), or
    create ``event`` (also what to do when the patched Event is gone). ``key`` is the de-duplication key."""

    event: JSON
    key: Key
    patch: JSON | None = None
    skip: bool = False


class EventCorrelator:
    """Aggregation, de-duplication and spam filtering with client-go's defaults; ``clock`` is injectable."""

    def __init__(self, clock: Clock = time.time, *, size: int = CACHE_SIZE, burst: int = SPAM_BURST,
                 qps: float = SPAM_QPS, max_events: int = AGGREGATE_MAX_EVENTS,
                 interval: float = AGGREGATE_INTERVAL_SECONDS) -> None:
        self.clock = clock
        self.aggregator = EventAggregator(clock, max_events=max_events, interval=interval, size=size)
        self.logger = EventLogger(size=size)
        self.spam = SpamFilter(clock, burst=burst, qps=qps, size=size)

    def correlate(self, event: JSON) -> Correlated:
        aggregated, key = self.aggregator.aggregate(event)
        observed, repeat = self.logger.observe(aggregated, key)
        if not self.spam.allow(observed):
            return Correlated(observed, key, skip=True)
        patch = None
        if repeat:
            patch = {"count": observed["count"], "lastTimestamp": observed.get("lastTimestamp"),
                     "message": observed.get("message", "")}
        return Correlated(observed, key, patch)
