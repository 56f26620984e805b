"""The Job controller's pure parts: index intervals, pod failure policy, success policy, back-off, removal
order, and the wire shape of status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nanokube.controllers.job import indexed, podfailurepolicy, successpolicy
from nanokube.controllers.job.backoff import BackoffStore, delay_for
from nanokube.controllers.job.manage import pods_for_removal, wanted_active
from nanokube.controllers.job.pods import finished_time, removal_order
from nanokube.controllers.job.state import SyncContext
from nanokube.controllers.job.status import ensure_condition, wire_status

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def pod(name: str = "p", *, phase: str = "Running", index: int | None = None, exit_code: int | None = None,
        conditions: list[dict[str, Any]] | None = None, finished: datetime | None = None,
        node: str = "", created: datetime = T0, ready: bool = False) -> dict[str, Any]:
    annotations = {} if index is None else {indexed.COMPLETION_INDEX: str(index)}
    status: dict[str, Any] = {"phase": phase, "conditions": list(conditions or [])}
    if ready:
        status["conditions"].append({"type": "Ready", "status": "True",
                                     "lastTransitionTime": created.strftime("%Y-%m-%dT%H:%M:%SZ")})
    if exit_code is not None:
        stamp = (finished or T0).strftime("%Y-%m-%dT%H:%M:%SZ")
        status["containerStatuses"] = [{"name": "main", "state": {"terminated": {"exitCode": exit_code,
                                                                                 "finishedAt": stamp}}}]
    return {"metadata": {"name": name, "namespace": "ns", "annotations": annotations,
                         "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "spec": {"nodeName": node}, "status": status}


@pytest.mark.parametrize(("text", "completions", "intervals", "back"), [
    ("", 5, [], ""),
    ("1", 5, [(1, 1)], "1"),
    ("1,2", 5, [(1, 2)], "1,2"),
    ("1,3-5", 10, [(1, 1), (3, 5)], "1,3-5"),
    ("0-2,3", 10, [(0, 3)], "0-3"),
    ("1,3-9", 5, [(1, 1), (3, 4)], "1,3,4"),  # cut at completions
    ("7,8", 5, [], ""),
    ("x,2", 5, [(2, 2)], "2"),  # corrupt parts are skipped
])
def test_index_intervals(text: str, completions: int, intervals: list[tuple[int, int]], back: str) -> None:
    parsed = indexed.parse_indexes(text, completions)
    assert parsed == intervals
    assert indexed.format_indexes(parsed) == back


def test_interval_arithmetic() -> None:
    iv = indexed.with_indexes([(0, 1), (5, 5)], [2, 7, 6])
    assert iv == [(0, 2), (5, 7)] and indexed.total(iv) == 6
    assert indexed.has(iv, 6) and not indexed.has(iv, 3)
    assert indexed.merge([(0, 0)], [(1, 3), (9, 9)]) == [(0, 3), (9, 9)]
    assert indexed.first_pending(3, 10, [(0, 2), (4, 4)]) == [3, 5, 6]
    assert indexed.first_pending(5, 4, [(1, 1)]) == [0, 2, 3]


def test_duplicated_and_invalid_indexes_go_first() -> None:
    keep_running = pod("a", index=0, node="n", ready=True)
    spare = pod("b", index=0)
    no_index = pod("c")
    beyond = pod("d", index=9)
    remove, keep = indexed.duplicates_for_removal([keep_running, spare, no_index, beyond], 3)
    assert [p["metadata"]["name"] for p in remove] == ["c", "d", "b"] and keep == [keep_running]
    assert indexed.pod_name_prefix("j", 3) == "j-3-"
    assert indexed.pod_name_prefix("x" * 60, 12) == "x" * 54 + "-12-"


def test_removal_order_prefers_cheap_pods() -> None:
    pending = pod("pending", phase="Pending")
    unready = pod("unready", node="n")
    ready_old = pod("ready-old", node="n", ready=True, created=T0)
    ready_new = pod("ready-new", node="n", ready=True, created=T0 + timedelta(hours=1))
    ordered = sorted([ready_old, ready_new, unready, pending], key=removal_order)
    assert [p["metadata"]["name"] for p in ordered] == ["pending", "unready", "ready-new", "ready-old"]
    job = {"spec": {"completionMode": "NonIndexed"}}
    assert pods_for_removal(job, [ready_old, pending], 1) == [pending]


def test_wanted_active() -> None:
    ctx = SyncContext({}, [], [], 0, 0, set(), set(), set(), backoff=BackoffStore().new_record("k", [], []))
    assert wanted_active({"spec": {"parallelism": 3, "completions": 5}}, ctx, 0) == 3
    ctx.succeeded = 4
    assert wanted_active({"spec": {"parallelism": 3, "completions": 5}}, ctx, 0) == 1
    assert wanted_active({"spec": {"parallelism": 3}}, ctx, 2) == 2  # a success: leave what runs
    ctx.succeeded = 0
    assert wanted_active({"spec": {"parallelism": 3}}, ctx, 0) == 3


@pytest.mark.parametrize(("rules", "failed", "verdict"), [
    ([{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1, 2]}}], pod(exit_code=2),
     ("Container main for pod ns/p failed with exit code 2 matching FailJob rule at index 0", True, "FailJob")),
    ([{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1]}}], pod(exit_code=2),
     (None, True, None)),
    ([{"action": "Ignore", "onExitCodes": {"operator": "NotIn", "values": [1]}}], pod(exit_code=2),
     (None, False, "Ignore")),
    ([{"action": "Ignore", "onExitCodes": {"operator": "NotIn", "values": [1]}}], pod(exit_code=0),
     (None, True, None)),  # exit code 0 never matches
    ([{"action": "Count", "onExitCodes": {"containerName": "other", "operator": "In", "values": [2]}}],
     pod(exit_code=2), (None, True, None)),
    ([{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}],
     pod(conditions=[{"type": "DisruptionTarget", "status": "True"}]), (None, False, "Ignore")),
    ([{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
      {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [2]}}],
     pod(exit_code=2, conditions=[{"type": "DisruptionTarget", "status": "True"}]),
     ("Pod ns/p has condition DisruptionTarget matching FailJob rule at index 0", True, "FailJob")),
    ([{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [2]}}], pod(exit_code=2),
     (None, True, "FailIndex")),
])
def test_pod_failure_policy(rules: list[dict[str, Any]], failed: dict[str, Any],
                            verdict: tuple[str | None, bool, str | None]) -> None:
    got = podfailurepolicy.match({"rules": rules}, failed)
    assert (got.fail_job_message, got.counts, got.action) == verdict


def test_success_policy() -> None:
    assert successpolicy.match({"rules": [{"succeededIndexes": "0,2"}]}, 4, [(0, 0)]) is None
    assert successpolicy.match({"rules": [{"succeededIndexes": "0,2"}]}, 4, [(0, 0), (2, 3)]) == \
        "Matched rules at index 0"
    assert successpolicy.match({"rules": [{"succeededIndexes": "0-3", "succeededCount": 2}]}, 4, [(1, 2)]) == \
        "Matched rules at index 0"
    assert successpolicy.match({"rules": [{"succeededIndexes": "9"}, {"succeededCount": 1}]}, 4, [(3, 3)]) == \
        "Matched rules at index 1"
    assert successpolicy.match(None, 4, [(0, 3)]) is None


def test_backoff() -> None:
    assert delay_for(0, T0, T0, 10, 600) == 0
    assert delay_for(1, T0, T0 + timedelta(seconds=4), 10, 600) == 6
    assert delay_for(3, T0, T0, 10, 600) == 40
    assert delay_for(20, T0, T0, 10, 600) == 600
    assert delay_for(2, T0, T0 + timedelta(seconds=30), 10, 600) == 0
    store = BackoffStore()
    record = store.new_record("k", [], [pod(exit_code=1, finished=T0), pod(exit_code=1, finished=T0 + timedelta(1))])
    assert (record.failures_after_last_success, record.last_failure) == (2, T0 + timedelta(1))
    store.update(record)
    # A success resets the count to the failures after it.
    later = store.new_record("k", [pod(exit_code=0, finished=T0 + timedelta(2))],
                             [pod(exit_code=1, finished=T0 + timedelta(3))])
    assert (later.failures_after_last_success, later.last_failure) == (1, T0 + timedelta(3))


def test_finished_time_falls_back() -> None:
    assert finished_time(pod(exit_code=1, finished=T0 + timedelta(hours=2))) == T0 + timedelta(hours=2)
    not_ready = pod(conditions=[{"type": "Ready", "status": "False", "lastTransitionTime": "2024-01-01T05:00:00Z"}])
    assert finished_time(not_ready) == T0 + timedelta(hours=5)
    assert finished_time(pod()) == T0


def test_conditions_and_wire_status() -> None:
    job: dict[str, Any] = {"status": {}}
    assert not ensure_condition(job, "Suspended", "False", "JobResumed", "Job resumed", T0)  # never add False
    assert ensure_condition(job, "Suspended", "True", "JobSuspended", "Job suspended", T0)
    assert not ensure_condition(job, "Suspended", "True", "JobSuspended", "Job suspended", T0 + timedelta(1))
    assert ensure_condition(job, "Suspended", "False", "JobResumed", "Job resumed", T0 + timedelta(1))
    assert job["status"]["conditions"][0]["lastTransitionTime"] == "2024-01-02T00:00:00Z"
    wire = wire_status({"active": 0, "succeeded": 2, "failed": 0, "ready": 0, "terminating": 0,
                        "uncountedTerminatedPods": {"succeeded": [], "failed": ["u"]}, "completedIndexes": ""})
    assert wire == {"succeeded": 2, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {"failed": ["u"]}}
