"""The FailedScheduling message: kube's FitError text, reasons counted per node by the first rejecting filter."""

from __future__ import annotations

import numpy as np
from sched_helpers import diagnose, framework, info, node, pod, snapshot

from nanokube.scheduler.framework import (
    Code,
    CycleState,
    Diagnosis,
    FilterResult,
    Status,
    fit_error_message,
    format_fit_error,
)


def test_histogram_entries_are_sorted_as_strings() -> None:
    message = format_fit_error(12, {"node(s) didn't match Pod's node affinity/selector": 2, "Insufficient cpu": 10})
    # Go's sort.Strings: "10 ..." sorts before "2 ...".
    assert message == ("0/12 nodes are available: 10 Insufficient cpu, "
                       "2 node(s) didn't match Pod's node affinity/selector.")


def test_prefilter_message_replaces_the_histogram_and_postfilter_is_appended() -> None:
    message = format_fit_error(3, {"ignored": 3}, prefilter_msg='persistentvolumeclaim "data" not found',
                               post_filter_msg="preemption: 0/3 nodes are available: 3 Preemption is not helpful "
                                               "for scheduling.")
    assert message == ('0/3 nodes are available: persistentvolumeclaim "data" not found. preemption: 0/3 nodes are '
                       "available: 3 Preemption is not helpful for scheduling.")


def test_three_nodes_one_short_of_cpu_two_not_matching_the_selector() -> None:
    snap = snapshot([node("a", cpu="1", labels={"disk": "ssd"}), node("b", labels={"disk": "hdd"}), node("c")])
    diagnosis = diagnose(framework(), info(pod("p", cpu="2", nodeSelector={"disk": "ssd"})), snap)
    assert fit_error_message(3, diagnosis) == ("0/3 nodes are available: 1 Insufficient cpu, "
                                               "2 node(s) didn't match Pod's node affinity/selector.")
    assert diagnosis.unschedulable_plugins == {"NodeAffinity", "NodeResourcesFit"}


def test_a_node_counts_once_per_reason_of_its_first_rejecting_plugin() -> None:
    # "a" fails the taint filter and resources; only the taint counts for it (filters run in order).
    taint = {"key": "dedicated", "value": "x", "effect": "NoSchedule"}
    snap = snapshot([node("a", cpu="1", memory="1Mi", taints=[taint]), node("b", cpu="1", memory="1Mi")])
    diagnosis = diagnose(framework(), info(pod("p", cpu="2", memory="1Gi")), snap)
    assert diagnosis.histogram() == {"node(s) had untolerated taint(s)": 1, "Insufficient cpu": 1,
                                     "Insufficient memory": 1}
    row_b = snap.table.rows["b"]
    status = diagnosis.node_status(row_b)
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE  # 2 cpu is more than b has at all
    assert status.reasons == ("Insufficient cpu", "Insufficient memory")
    assert status.plugin == "NodeResourcesFit"


def test_node_status_and_unresolvable_rows_from_masks() -> None:
    alive = np.array([True, True, True])
    passed = np.array([True, False, False])
    result = FilterResult(passed, [("Too many pods", np.array([False, True, False])),
                                   ("Insufficient cpu", np.array([False, False, True]))],
                          np.array([False, False, True]))
    diagnosis = Diagnosis(num_nodes=3, alive=alive, plugin_names=["NodeResourcesFit"], results=[result],
                          first_rejector=np.array([-1, 0, 0], np.int16))
    assert diagnosis.node_status(0) == Status()
    assert diagnosis.node_status(1).code == Code.UNSCHEDULABLE
    assert list(diagnosis.unresolvable_rows()) == [False, False, True]
    assert fit_error_message(3, diagnosis) == "0/3 nodes are available: 1 Insufficient cpu, 1 Too many pods."


def test_no_nodes_at_all() -> None:
    result = framework().schedule(CycleState(), info(pod("p")), snapshot([]))
    assert result.status is not None and result.status.message() == "no nodes available to schedule pods"
