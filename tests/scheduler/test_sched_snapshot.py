"""The snapshot: columns follow nodes and pods; assume, forget and confirm; orphans; row reuse and growth."""

from __future__ import annotations

from sched_helpers import info, node, pod, snapshot

from nanokube.scheduler.table import CPU, MEMORY, PODS


def used(snap: object, name: str, resource: int) -> int:
    table = snap.table  # type: ignore[attr-defined]
    return int(table.used[resource, table.rows[name]])


def test_assume_charges_forget_takes_back_confirm_keeps() -> None:
    snap = snapshot([node("a")])
    p = info(pod("p", cpu="500m", memory="1Gi"))
    snap.assume(p, "a")
    assert (used(snap, "a", PODS), used(snap, "a", CPU), used(snap, "a", MEMORY)) == (1, 500, 2**30)
    snap.forget(p.uid)
    assert used(snap, "a", PODS) == 0 and used(snap, "a", CPU) == 0
    snap.assume(p, "a")
    bound = info({**p.pod, "spec": {**p.pod["spec"], "nodeName": "a"}})
    snap.add_pod(bound, "a")  # the informer's copy arrives
    assert not snap.is_assumed(p.uid)
    snap.forget(p.uid)  # a late failure report does not take a confirmed pod away
    assert used(snap, "a", CPU) == 500


def test_a_pod_moving_nodes_is_charged_once() -> None:
    snap = snapshot([node("a"), node("b")])
    p = info(pod("p", cpu="1"))
    snap.add_pod(p, "a")
    snap.add_pod(info(p.pod), "b")
    assert used(snap, "a", CPU) == 0 and used(snap, "b", CPU) == 1000
    snap.remove_pod(p.uid)
    assert used(snap, "b", CPU) == 0 and used(snap, "b", PODS) == 0


def test_pods_of_unknown_nodes_wait_and_count_when_the_node_appears() -> None:
    snap = snapshot([])
    p = info(pod("p", cpu="1"))
    snap.add_pod(p, "late")
    snap.set_node(node("late"))
    assert used(snap, "late", CPU) == 1000
    snap.remove_node("late")
    snap.set_node(node("late"))
    assert used(snap, "late", CPU) == 1000  # it came back with its pods
    snap.remove_pod(p.uid)
    assert used(snap, "late", CPU) == 0


def test_rows_are_reused_and_the_table_grows() -> None:
    snap = snapshot([node(f"n{i}") for i in range(100)])
    assert snap.table.capacity >= 100 and snap.num_nodes == 100
    row = snap.table.rows["n7"]
    snap.remove_node("n7")
    assert not snap.table.alive[row]
    snap.set_node(node("new"))
    assert snap.table.rows["new"] == row and snap.num_nodes == 100


def test_allocatable_changes_and_new_resources() -> None:
    snap = snapshot([node("a")])
    table = snap.table
    changes = snap.set_node(node("a", cpu="8", extra={"example.com/gpu": "4"}))
    assert "allocatable" in changes
    assert table.alloc[CPU, table.rows["a"]] == 8000
    assert table.alloc[table.resources["example.com/gpu"], table.rows["a"]] == 4
    assert snap.set_node(node("a", cpu="8", extra={"example.com/gpu": "4"})) == {"other"}
    assert "taints" in snap.set_node(node("a", cpu="8", extra={"example.com/gpu": "4"},
                                          taints=[{"key": "k", "effect": "NoSchedule"}]))
    assert table.rows["a"] in table.tainted


def test_counters_follow_pods_and_nodes() -> None:
    snap = snapshot([node("a"), node("b")])
    web = info(pod("w", labels={"app": "web"}))
    snap.add_pod(web, "a")

    def is_web(p: object) -> bool:
        return p.labels.get("app") == "web"  # type: ignore[attr-defined]

    counts = snap.pod_counts("web", is_web)
    assert counts[snap.table.rows["a"]] == 1
    other = info(pod("w2", labels={"app": "web"}))
    snap.add_pod(other, "b")
    assert snap.pod_counts("web", is_web)[snap.table.rows["b"]] == 1
    snap.remove_node("b")
    snap.set_node(node("b"))
    assert snap.pod_counts("web", is_web)[snap.table.rows["b"]] == 1
    snap.remove_pod(other.uid)
    assert snap.pod_counts("web", is_web)[snap.table.rows["b"]] == 0
