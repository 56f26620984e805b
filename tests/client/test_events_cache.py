"""The EventCorrelator's parts on plain Event dicts and a stepped clock: keys, token bucket, aggregation, LRU."""

from __future__ import annotations

from typing import Any

from nanokube.client.eventcache import (
    COMBINED_PREFIX,
    LRU,
    EventAggregator,
    EventCorrelator,
    SpamFilter,
    aggregate_key,
    event_key,
    spam_key,
)

JSON = dict[str, Any]


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def ev(message: str = "m", *, reason: str = "R", name: str = "web", uid: str = "u1", type_: str = "Normal",
       component: str = "rs-controller", field_path: str = "") -> JSON:
    ref = {"kind": "ReplicaSet", "namespace": "default", "name": name, "uid": uid, "apiVersion": "apps/v1"}
    if field_path:
        ref["fieldPath"] = field_path
    return {"metadata": {"name": f"{name}.{message}", "namespace": "default"}, "involvedObject": ref,
            "reason": reason, "message": message, "type": type_, "source": {"component": component},
            "firstTimestamp": "t", "lastTimestamp": "t", "count": 1, "reportingComponent": component,
            "reportingInstance": component}


def test_keys_separate_what_client_go_separates() -> None:
    assert event_key(ev("a")) != event_key(ev("b"))
    assert event_key(ev("a")) != event_key(ev("a", field_path="spec.containers{c}"))
    assert spam_key(ev("a", reason="X", type_="Warning")) == spam_key(ev("b", field_path="spec.containers{c}"))
    assert spam_key(ev(uid="u1")) != spam_key(ev(uid="u2"))
    assert spam_key(ev()) != spam_key(ev(component="other"))
    group_a, local_a = aggregate_key(ev("a"))
    group_b, local_b = aggregate_key(ev("b"))
    assert group_a == group_b and (local_a, local_b) == ("a", "b")
    assert aggregate_key(ev("a", reason="Other"))[0] != group_a
    assert aggregate_key(ev("a", type_="Warning"))[0] != group_a


def test_spam_filter_bursts_then_refills_one_per_interval() -> None:
    clock = Clock()
    spam = SpamFilter(clock, burst=25, qps=1 / 300)
    assert [spam.allow(ev(str(i))) for i in range(30)] == [True] * 25 + [False] * 5
    assert spam.allow(ev(name="other")), "another object has its own bucket"
    clock.now += 299
    assert not spam.allow(ev())
    clock.now += 1
    assert spam.allow(ev()) and not spam.allow(ev())
    clock.now += 3000  # ten tokens refilled
    assert [spam.allow(ev()) for _ in range(11)] == [True] * 10 + [False]
    clock.now += 10**6
    assert sum(spam.allow(ev()) for _ in range(40)) == 25, "refill stops at the burst"


def test_aggregator_combines_from_the_tenth_distinct_message() -> None:
    clock = Clock()
    agg = EventAggregator(clock)
    outcomes = [agg.aggregate(ev(f"Created pod: x-{i}")) for i in range(12)]
    assert [e["message"] for e, _ in outcomes[:9]] == [f"Created pod: x-{i}" for i in range(9)]
    assert [e["message"] for e, _ in outcomes[9:]] == [COMBINED_PREFIX + f"Created pod: x-{i}" for i in (9, 10, 11)]
    keys = {k for _, k in outcomes[9:]}
    assert len(keys) == 1 and keys.isdisjoint(k for _, k in outcomes[:9])
    again, key = agg.aggregate(ev("Created pod: x-3"))
    assert again["message"] == "Created pod: x-3" and key == outcomes[3][1], "the first nine keep their own Event"
    assert agg.aggregate(ev("other", reason="Deleted"))[0]["message"] == "other", "another reason, another group"


def test_aggregator_forgets_a_group_quiet_for_the_interval() -> None:
    clock = Clock()
    agg = EventAggregator(clock, interval=600)
    for i in range(10):
        agg.aggregate(ev(str(i)))
        clock.now += 60  # each one within 10 minutes of the last: the window slides
    assert agg.aggregate(ev("late"))[0]["message"].startswith(COMBINED_PREFIX)
    clock.now += 601
    assert agg.aggregate(ev("fresh"))[0]["message"] == "fresh"


def test_correlator_counts_repeats_and_keeps_counting_dropped_ones() -> None:
    clock = Clock()
    corr = EventCorrelator(clock, burst=3, qps=1 / 300)
    first = corr.correlate(ev("same"))
    assert first.patch is None and not first.skip and first.event["count"] == 1
    second = corr.correlate(ev("same") | {"metadata": {"name": "new-name", "namespace": "default"}})
    assert second.event["metadata"]["name"] == first.event["metadata"]["name"]
    assert second.patch == {"count": 2, "lastTimestamp": "t", "message": "same"}
    corr.correlate(ev("same"))
    assert corr.correlate(ev("same")).skip and corr.correlate(ev("same")).skip
    clock.now += 300
    after = corr.correlate(ev("same"))
    assert not after.skip and after.patch is not None and after.patch["count"] == 6


def test_caches_stay_bounded() -> None:
    lru: LRU[str, int] = LRU(3)
    for i, k in enumerate("abcd"):
        lru.put(k, i)
    assert len(lru) == 3 and lru.get("a") is None
    lru.get("b")
    lru.put("e", 5)
    assert lru.get("b") == 1 and lru.get("c") is None
    corr = EventCorrelator(Clock(), size=8)
    for i in range(100):
        corr.correlate(ev(str(i), name=f"obj-{i}", uid=f"u{i}"))
    assert len(corr.logger._seen) == 8 and len(corr.spam._buckets) == 8 and len(corr.aggregator._groups) == 8
