"""The Deployment controller's arithmetic without a cluster: hash, fenceposts, annotations, proportions and
the progress conditions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_deployment_helpers import deployment_manifest

from nanokube.api.names import NAME_SUFFIX_ALPHABET
from nanokube.controllers.deployment.progress import (
    get_condition,
    new_condition,
    rollout_status,
    set_condition,
    stuck_requeue,
)
from nanokube.controllers.deployment.util import (
    compute_hash,
    equal_ignore_hash,
    find_active_or_latest,
    max_surge,
    max_unavailable,
    new_rs_new_replicas,
    proportion,
    resolve_fenceposts,
    set_new_rs_annotations,
)
from nanokube.util.timeutil import now, rfc3339

JSON = dict


def deployment(replicas: int, surge: object = "25%", unavailable: object = "25%", **spec: object) -> JSON:
    d = deployment_manifest("web", replicas, **spec)
    d["metadata"].update(uid="d-uid", generation=1)
    d["spec"].setdefault("strategy", {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
    d["spec"].setdefault("progressDeadlineSeconds", 600)
    d["status"] = {}
    return d


def rs(name: str, replicas: int, available: int = 0, created: str = "2026-01-01T00:00:00Z", **annotations: str) -> JSON:
    return {"metadata": {"name": name, "uid": name, "creationTimestamp": created,
                         "annotations": {f"deployment.kubernetes.io/{k.replace('_', '-')}": v
                                         for k, v in annotations.items()}},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "availableReplicas": available, "readyReplicas": available}}


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "want"), [
    (10, "25%", "25%", (3, 2)),  # surge rounds up, unavailability down
    (1, "25%", "25%", (1, 0)),
    (3, 0, "10%", (0, 1)),  # both resolve to zero: one may be unavailable
    (4, 1, 1, (1, 1)),
    (5, "50%", 2, (3, 2)),
])
def test_fenceposts(replicas: int, surge: object, unavailable: object, want: tuple[int, int]) -> None:
    assert resolve_fenceposts(deployment(replicas, surge, unavailable)) == want


def test_max_unavailable_is_capped_and_zero_for_recreate() -> None:
    assert max_unavailable(deployment(2, 0, 5)) == 2
    assert max_unavailable(deployment(0)) == 0
    recreate = deployment(3, strategy={"type": "Recreate"})
    assert (max_surge(recreate), max_unavailable(recreate)) == (0, 0)


def test_hash_is_stable_and_follows_template_and_collisions() -> None:
    template = deployment(3)["spec"]["template"]
    first = compute_hash(template, None)
    assert first == compute_hash({**template}, None)
    assert set(first) <= set(NAME_SUFFIX_ALPHABET) and 1 <= len(first) <= 10
    changed = {**template, "spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]}}
    assert compute_hash(changed, None) != first
    assert compute_hash(template, 1) not in (first, compute_hash(template, 2))


def test_templates_compare_without_the_hash_label_and_empty_fields() -> None:
    a = {"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}}, "spec": {"containers": [{"name": "c"}]}}
    b = {"metadata": {"labels": {"app": "web"}, "annotations": {}}, "spec": {"containers": [{"name": "c"}],
                                                                            "volumes": []}}
    assert equal_ignore_hash(a, b)
    b["spec"]["containers"][0]["image"] = "x"
    assert not equal_ignore_hash(a, b)


def test_new_rs_annotations_raise_revision_and_keep_history() -> None:
    d = deployment(3)
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "v2", "deployment.kubernetes.io/revision": "9",
                                    "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    new = rs("web-a", 0)
    assert set_new_rs_annotations(d, new, 1, exists=False)
    assert new["metadata"]["annotations"] == {"kubernetes.io/change-cause": "v2",
                                              "deployment.kubernetes.io/revision": "1",
                                              "deployment.kubernetes.io/desired-replicas": "3",
                                              "deployment.kubernetes.io/max-replicas": "4"}
    assert not set_new_rs_annotations(d, new, 1, exists=True)  # nothing new
    assert set_new_rs_annotations(d, new, 3, exists=True)  # rolled back to: revision 3, history 1
    assert set_new_rs_annotations(d, new, 5, exists=True)
    annotations = new["metadata"]["annotations"]
    assert (annotations["deployment.kubernetes.io/revision"],
            annotations["deployment.kubernetes.io/revision-history"]) == ("5", "1,3")
    assert not set_new_rs_annotations(d, new, 4, exists=True)  # never lowered


def test_new_replicas_grow_up_to_the_surge() -> None:
    d = deployment(10)  # surge 3
    old, new = rs("old", 10), rs("new", 0)
    assert new_rs_new_replicas(d, [old, new], new) == 3
    old["spec"]["replicas"] = 8
    new["spec"]["replicas"] = 3
    assert new_rs_new_replicas(d, [old, new], new) == 5
    old["spec"]["replicas"] = 0
    assert new_rs_new_replicas(d, [old, new], new) == 10  # never past the desired count
    assert new_rs_new_replicas(deployment(4, strategy={"type": "Recreate"}), [new], new) == 4


def test_proportions_and_the_active_replicaset() -> None:
    d = deployment(20)  # 20 + 5 surge = 25 allowed, was 10 + 3 = 13
    old, new = rs("old", 8, max_replicas="13"), rs("new", 5, max_replicas="13")
    assert proportion(old, d, 12, 0) == 7
    assert proportion(new, d, 12, 7) == 5
    assert proportion(old, deployment(0), -8, 0) == -8
    assert find_active_or_latest(new, [rs("x", 0), old]) is None
    assert find_active_or_latest(None, [rs("a", 0, created="2026-01-01T00:00:00Z"),
                                        rs("b", 0, created="2026-01-02T00:00:00Z")])["metadata"]["name"] == "b"


def test_progress_conditions() -> None:
    t = now()
    d = deployment(2)
    new = rs("web-a", 2, available=0)
    created = new_condition("Progressing", "True", "NewReplicaSetCreated", 'Created new replica set "web-a"',
                            t - timedelta(seconds=700))
    d["status"] = {"replicas": 2, "updatedReplicas": 2, "observedGeneration": 1, "conditions": [created]}
    status = rollout_status(d, [new], new, t)
    cond = get_condition(status, "Progressing")
    assert cond and (cond["status"], cond["reason"], cond["message"]) == (
        "False", "ProgressDeadlineExceeded", 'ReplicaSet "web-a" has timed out progressing.')
    assert get_condition(status, "Available")["reason"] == "MinimumReplicasUnavailable"
    # Progress (one more available) renews the condition instead, keeping its transition time.
    new["status"]["availableReplicas"] = 1
    status = rollout_status(d, [new], new, t)
    cond = get_condition(status, "Progressing")
    assert cond and (cond["reason"], cond["message"], cond["lastTransitionTime"], cond["lastUpdateTime"]) == (
        "ReplicaSetUpdated", 'ReplicaSet "web-a" is progressing.', created["lastTransitionTime"], rfc3339(t))
    # Done: NewReplicaSetAvailable, and no requeue wanted.
    new["status"]["availableReplicas"] = 2
    status = rollout_status(d, [new], new, t)
    assert get_condition(status, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert stuck_requeue(d, status, t) is None


def test_stuck_requeue_waits_for_the_deadline() -> None:
    t = now()
    d = deployment(2, progressDeadlineSeconds=30)
    set_condition(d["status"], new_condition("Progressing", "True", "ReplicaSetUpdated", "x", t - timedelta(seconds=10)))
    after = stuck_requeue(d, {"replicas": 2, "updatedReplicas": 2}, t)
    assert after is not None and 19 <= after <= 21.2


def test_replica_failure_moves_up_to_the_deployment() -> None:
    d = deployment(2)
    new = rs("web-a", 2)
    new["status"]["conditions"] = [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                    "message": "pods are forbidden", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    status = rollout_status(d, [new], new, now())
    cond = get_condition(status, "ReplicaFailure")
    assert cond and (cond["status"], cond["reason"], cond["message"], cond["lastUpdateTime"]) == (
        "True", "FailedCreate", "pods are forbidden", "2026-01-01T00:00:00Z")
    new["status"].pop("conditions")
    d["status"] = status
    assert get_condition(rollout_status(d, [new], new, now()), "ReplicaFailure") is None
