"""The StatefulSet controller's pure parts: identity, its revisions, claim retention references, maxUnavailable,
and status arithmetic (revision hashing and ordering: test_history.py)."""

from __future__ import annotations

import copy

import pytest
from test_statefulset_helpers import sts_manifest

from nanokube.controllers.history import HASH_LABEL
from nanokube.controllers.statefulset import claims, identity
from nanokube.controllers.statefulset import status as set_status
from nanokube.controllers.statefulset.history import apply_revision, set_revision, template_patch
from nanokube.controllers.statefulset.update import max_unavailable
from nanokube.util.timeutil import now


def _set(**spec: object) -> dict:
    sts = sts_manifest("web", 3, **spec)
    sts["metadata"].update(namespace="default", uid="set-uid", generation=1)
    return sts


def _pod(name: str, uid: str = "") -> dict:
    return {"metadata": {"name": name, "namespace": "default", **({"uid": uid} if uid else {})}}


@pytest.mark.parametrize(("name", "parent", "number"), [
    ("web-0", "web", 0), ("my-app-12", "my-app", 12), ("web", "", -1), ("web-x", "", -1),
    ("web-99999999999", "web", -1)])
def test_parent_and_ordinal(name: str, parent: str, number: int) -> None:
    assert identity.parent_and_ordinal(_pod(name)) == (parent, number)


def test_new_pod_identity_and_storage() -> None:
    sts = _set()
    sts["spec"]["template"]["spec"]["volumes"] = [{"name": "www", "emptyDir": {}}, {"name": "conf", "emptyDir": {}}]
    pod = identity.new_pod(sts, 4)
    assert pod["metadata"]["name"] == "web-4"
    assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "4"
    assert pod["spec"]["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-4"}},
                                      {"name": "conf", "emptyDir": {}}]  # the claim replaces a same-named volume
    assert identity.identity_matches(sts, pod) and identity.storage_matches(sts, pod)
    assert not identity.is_created(pod)
    moved = copy.deepcopy(pod)
    moved["metadata"]["labels"].pop("statefulset.kubernetes.io/pod-name")
    moved["spec"]["volumes"] = []
    assert not identity.identity_matches(sts, moved) and not identity.storage_matches(sts, moved)


@pytest.mark.parametrize(("strategy", "keep_current"), [
    ({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}, {0: True, 1: True, 2: False}),
    ({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}, {0: False, 1: False, 2: False}),
    ({"type": "OnDelete"}, {0: False, 1: False, 2: False})])
def test_new_pods_below_the_partition_keep_the_current_revision(strategy: dict, keep_current: dict) -> None:
    current = _set(updateStrategy=strategy)
    update = _set(updateStrategy=strategy, image="nginx:1.26")
    for number, keep in keep_current.items():
        pod = identity.new_versioned_pod(current, update, "web-old", "web-new", number)
        assert identity.revision_of(pod) == ("web-old" if keep else "web-new")
        assert pod["spec"]["containers"][0]["image"] == ("nginx:1.25" if keep else "nginx:1.26")


def test_set_revision_holds_the_template_patch() -> None:
    sts = _set()
    sts["metadata"]["annotations"] = {"note": "x"}
    revision = set_revision(sts, 3, 0)
    hash_ = revision["metadata"]["labels"][HASH_LABEL]
    assert revision["metadata"]["name"] == f"web-{hash_}"
    assert revision["metadata"]["labels"]["app"] == "nginx"
    assert revision["metadata"]["annotations"] == {"note": "x"}
    assert revision["revision"] == 3 and revision["data"] == template_patch(sts)
    assert revision["data"]["spec"]["template"]["$patch"] == "replace"
    assert revision["metadata"]["ownerReferences"][0]["uid"] == "set-uid"
    changed = _set(image="nginx:1.26")
    restored = apply_revision(changed, revision)
    assert restored["spec"]["template"] == sts["spec"]["template"]
    assert changed["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"  # untouched


POLICIES = [("Retain", "Retain"), ("Delete", "Retain"), ("Retain", "Delete"), ("Delete", "Delete")]


@pytest.mark.parametrize(("when_deleted", "when_scaled"), POLICIES)
@pytest.mark.parametrize("scaled_down", [False, True])
def test_claim_owner_references_follow_the_policy(when_deleted: str, when_scaled: str, scaled_down: bool) -> None:
    sts = _set(persistentVolumeClaimRetentionPolicy={"whenDeleted": when_deleted, "whenScaled": when_scaled})
    pod = _pod("web-5" if scaled_down else "web-1", "pod-uid")
    claim = {"metadata": {"name": "www-web-1", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "cm-uid"}]}}
    claims.update_owner_refs(claim, sts, pod)
    uids = [r["uid"] for r in claim["metadata"]["ownerReferences"]]
    want = ["cm-uid"]
    if when_deleted == "Delete" and not (when_scaled == "Delete" and scaled_down):
        want.append("set-uid")
    if when_scaled == "Delete" and scaled_down:
        want.append("pod-uid")
    assert uids == want
    assert all(r.get("controller") for r in claim["metadata"]["ownerReferences"][1:])
    assert claims.owner_refs_up_to_date(claim, sts, pod)
    if len(want) > 1:
        claim["metadata"]["ownerReferences"] = claim["metadata"]["ownerReferences"][:1]
        assert not claims.owner_refs_up_to_date(claim, sts, pod)


def test_stale_and_foreign_claim_references() -> None:
    sts = _set(persistentVolumeClaimRetentionPolicy={"whenDeleted": "Retain", "whenScaled": "Delete"})
    claim = {"metadata": {"name": "www-web-1", "ownerReferences": [
        {"apiVersion": "v1", "kind": "Pod", "name": "web-1", "uid": "earlier-pod", "controller": True}]}}
    assert claims.stale_for_pod(claim, _pod("web-1"))  # the successor must wait for the collector
    assert not claims.stale_for_pod(claim, _pod("web-1", "earlier-pod"))
    assert claims.owner_refs_up_to_date(claim, sts, _pod("web-1", "new-pod"))  # hands off a stale claim
    foreign = {"metadata": {"name": "www-web-1", "ownerReferences": [
        {"apiVersion": "v1", "kind": "Foo", "name": "x", "uid": "foo", "controller": True}]}}
    assert claims.has_unexpected_controller(foreign, sts, _pod("web-1", "p"))
    assert claims.owner_refs_up_to_date(foreign, sts, _pod("web-9", "p"))  # no refs of ours to add or remove
    retain = _set()
    assert not claims.has_unexpected_controller(foreign, retain, _pod("web-1", "p"))


@pytest.mark.parametrize(("value", "replicas", "want"), [
    (None, 5, 1), (3, 5, 3), ("50%", 5, 2), ("10%", 3, 1), ("100%", 4, 4), (0, 3, 1)])
def test_max_unavailable(value: int | str | None, replicas: int, want: int) -> None:
    assert max_unavailable(value, replicas) == want


def test_status_completion_and_consistency() -> None:
    sts = _set(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    status = set_status.new_status(sts, "web-a", "web-b", 0)
    status.update(replicas=3, readyReplicas=3, availableReplicas=3, currentReplicas=0, updatedReplicas=3)
    set_status.complete_rolling_update(sts, status)
    assert status["currentRevision"] == "web-b" and status["currentReplicas"] == 3
    sts["status"] = set_status.wire_form(sts, status)
    assert not set_status.inconsistent(sts, dict(status))
    assert set_status.inconsistent(sts, {**status, "readyReplicas": 2})
    assert set_status.inconsistent(sts, {**status, "observedGeneration": 2})
    empty = set_status.new_status(sts, "web-a", "web-a", 0)
    set_status.count(empty, [], 0, now())
    assert set_status.wire_form({}, empty) == {
        "observedGeneration": 1, "replicas": 0, "availableReplicas": 0, "collisionCount": 0,
        "currentRevision": "web-a", "updateRevision": "web-a"}
    partial = set_status.new_status(sts, "web-a", "web-b", 0)
    partial.update(replicas=3, readyReplicas=3, updatedReplicas=1, currentReplicas=2)
    set_status.complete_rolling_update(sts, partial)
    assert partial["currentRevision"] == "web-a"
