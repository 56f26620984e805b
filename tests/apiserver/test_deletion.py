"""The pure delete decisions: preconditions, propagation finalizers, grace, namespaces, and removal on update."""

from __future__ import annotations

from typing import Any

import pytest

from nanokube.api.errors import Conflict
from nanokube.api.registry import Registry, Resource
from nanokube.apiserver import deletion
from nanokube.apiserver.deletion import DeleteOptions, Plan
from nanokube.apiserver.strategies import StrategyOptions, strategy_for

JSON = dict[str, Any]
REGISTRY = Registry()


def _resource(group: str, plural: str) -> Resource:
    resource = REGISTRY.get(group, "v1", plural)
    assert resource is not None
    return resource


def _plan(obj: JSON, plural: str = "configmaps", group: str = "", **opts: Any) -> Plan:
    resource = _resource(group, plural)
    return deletion.plan(resource, obj["metadata"]["name"], obj, DeleteOptions(**opts),
                         strategy_for(resource, StrategyOptions()))


def _obj(**meta: Any) -> JSON:
    return {"metadata": {"name": "x", "uid": "u1", "resourceVersion": "7", **meta}}


def _running_pod(**meta: Any) -> JSON:
    return {"kind": "Pod", **_obj(**meta), "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 20},
            "status": {"phase": "Running"}}


def test_an_object_without_finalizers_or_grace_goes_now() -> None:
    assert _plan(_obj()) == Plan(remove=True)
    assert _plan(_obj(), propagation_policy="Background") == Plan(remove=True)


def test_preconditions_refuse_with_the_kind_named() -> None:
    with pytest.raises(Conflict, match='on ConfigMap "x": the UID in the precondition'):
        _plan(_obj(), precondition_uid="other")
    with pytest.raises(Conflict, match=r"ResourceVersion in the precondition \(6\)"):
        _plan(_obj(), precondition_resource_version="6")
    assert _plan(_obj(), precondition_uid="u1", precondition_resource_version="7").remove


@pytest.mark.parametrize(("policy", "orphan", "have", "want"), [
    ("Foreground", None, [], ["foregroundDeletion"]),
    ("Orphan", None, ["a", "foregroundDeletion"], ["a", "orphan"]),
    ("Foreground", None, ["orphan", "b"], ["b", "foregroundDeletion"]),
    (None, True, [], ["orphan"]),
    ("Background", True, ["a"], ["a"]),  # propagationPolicy wins over orphanDependents
])
def test_propagation_adds_its_finalizer_and_marks(policy: str | None, orphan: bool | None, have: list[str],
                                                  want: list[str]) -> None:
    step = _plan(_obj(finalizers=have), propagation_policy=policy, orphan_dependents=orphan)
    assert not step.remove and step.marked is not None
    assert step.marked["metadata"]["finalizers"] == want
    assert step.marked["metadata"]["deletionTimestamp"] and step.marked["metadata"]["deletionGracePeriodSeconds"] == 0


def test_policy_defaults_come_from_the_kind() -> None:
    opts = DeleteOptions()
    assert deletion.propagation_policy(opts, "Orphan") == "Orphan"
    assert deletion.propagation_policy(DeleteOptions(orphan_dependents=False), "Orphan") == "Background"
    assert deletion.with_policy_finalizer(["x"], "Background") == ["x"]


def test_an_object_already_marked_is_left_alone_unless_something_changes() -> None:
    marked = _obj(finalizers=["keep"], deletionTimestamp="2024-01-01T00:00:00Z", deletionGracePeriodSeconds=0)
    assert _plan(marked) == Plan()
    step = _plan(marked, propagation_policy="Foreground")
    assert step.marked is not None and step.marked["metadata"]["finalizers"] == ["keep", "foregroundDeletion"]
    assert step.marked["metadata"]["deletionTimestamp"] == "2024-01-01T00:00:00Z"


def test_a_running_pod_waits_its_grace_and_a_shorter_one_shortens_it() -> None:
    step = _plan(_running_pod(), "pods")
    assert step.marked is not None and step.marked["metadata"]["deletionGracePeriodSeconds"] == 20
    marked = _running_pod(deletionTimestamp="2999-01-01T00:00:00Z", deletionGracePeriodSeconds=20)
    assert _plan(marked, "pods", grace_period_seconds=30) == Plan()
    shorter = _plan(marked, "pods", grace_period_seconds=5)
    assert shorter.marked is not None and shorter.marked["metadata"]["deletionGracePeriodSeconds"] == 5
    assert shorter.marked["metadata"]["deletionTimestamp"] < "2999"
    assert _plan(marked, "pods", grace_period_seconds=0).remove


def test_a_namespace_turns_terminating_and_waits_for_its_spec_finalizers() -> None:
    ns = {**_obj(), "spec": {"finalizers": ["kubernetes"]}}
    step = _plan(ns, "namespaces")
    assert step.marked is not None and step.marked["status"]["phase"] == "Terminating"
    assert _plan({**_obj(), "spec": {}}, "namespaces").remove


def test_an_update_clearing_the_last_finalizer_removes() -> None:
    def obj(**meta: Any) -> JSON:
        return {"kind": "ConfigMap", "metadata": meta}

    assert deletion.ready_to_remove(obj(deletionTimestamp="t"))
    assert not deletion.ready_to_remove(obj(deletionTimestamp="t", finalizers=["f"]))
    assert not deletion.ready_to_remove(obj())
    assert not deletion.ready_to_remove({**obj(deletionTimestamp="t"), "kind": "Namespace",
                                         "spec": {"finalizers": ["kubernetes"]}})
    assert not deletion.ready_to_remove({**obj(deletionTimestamp="t", deletionGracePeriodSeconds=30), "kind": "Pod"})
    assert deletion.ready_to_remove({**obj(deletionTimestamp="t", deletionGracePeriodSeconds=0), "kind": "Pod"})


def test_no_finalizer_may_be_added_while_deleting() -> None:
    live = _obj(deletionTimestamp="t", finalizers=["a"])
    errors = deletion.finalizers_added_while_deleting(_obj(finalizers=["a", "c", "b"]), live)
    assert len(errors) == 1 and errors[0].field == "metadata.finalizers"
    assert 'found new finalizers []string{"b", "c"}' in errors[0].detail
    assert deletion.finalizers_added_while_deleting(_obj(finalizers=[]), live) == []
    assert deletion.finalizers_added_while_deleting(_obj(finalizers=["z"]), _obj()) == []
