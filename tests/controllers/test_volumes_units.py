"""Pure helpers of the volume controllers: matching a claim to a volume, the default class, the claim index."""

from __future__ import annotations

from typing import Any

from nanokube.controllers.volumes.common import ClaimUsers, claim_class, claim_has_class, is_bound_to
from nanokube.controllers.volumes.matching import find_best_match, unsatisfied_because
from nanokube.controllers.volumes.protection import pod_uses_claim
from nanokube.controllers.volumes.storageclass import default_class

JSON = dict[str, Any]


def pv(name: str, size: str, modes: list[str], *, cls: str = "", phase: str = "Available", **spec: Any) -> JSON:
    return {"metadata": {"name": name, "labels": spec.pop("labels", {})},
            "spec": {"capacity": {"storage": size}, "accessModes": modes, "storageClassName": cls, **spec},
            "status": {"phase": phase}}


def pvc(size: str, modes: list[str], *, cls: str = "", **spec: Any) -> JSON:
    return {"metadata": {"name": "c", "namespace": "ns", "uid": "u1"},
            "spec": {"accessModes": modes, "resources": {"requests": {"storage": size}}, "storageClassName": cls,
                     **spec}}


def names(found: JSON | None) -> str:
    return "" if found is None else str(found["metadata"]["name"])


def test_fewest_access_modes_win_before_size() -> None:
    volumes = [pv("multi", "1Gi", ["ReadWriteOnce", "ReadWriteMany"]), pv("single", "10Gi", ["ReadWriteOnce"])]
    assert names(find_best_match(pvc("1Gi", ["ReadWriteOnce"]), volumes, False)) == "single"
    assert names(find_best_match(pvc("1Gi", ["ReadWriteMany"]), volumes, False)) == "multi"
    assert names(find_best_match(pvc("20Gi", ["ReadWriteOnce"]), volumes, False)) == ""


def test_phase_class_mode_and_selector_filter_candidates() -> None:
    volumes = [pv("released", "1Gi", ["ReadWriteOnce"], phase="Released"),
               pv("block", "1Gi", ["ReadWriteOnce"], volumeMode="Block"),
               pv("gold", "1Gi", ["ReadWriteOnce"], cls="gold"),
               pv("labelled", "5Gi", ["ReadWriteOnce"], labels={"tier": "db"}),
               pv("plain", "2Gi", ["ReadWriteOnce"])]
    assert names(find_best_match(pvc("1Gi", ["ReadWriteOnce"]), volumes, False)) == "plain"
    assert names(find_best_match(pvc("1Gi", ["ReadWriteOnce"], cls="gold"), volumes, False)) == "gold"
    picky = pvc("1Gi", ["ReadWriteOnce"], selector={"matchLabels": {"tier": "db"}})
    assert names(find_best_match(picky, volumes, False)) == "labelled"
    assert names(find_best_match(pvc("1Gi", ["ReadWriteOnce"], volumeMode="Block"), volumes, False)) == "block"


def test_delayed_binding_takes_only_a_volume_reserved_for_the_claim() -> None:
    free = pv("free", "1Gi", ["ReadWriteOnce"])
    reserved = pv("reserved", "9Gi", ["ReadWriteOnce"], cls="other", phase="Pending",
                  claimRef={"namespace": "ns", "name": "c"})
    claim = pvc("1Gi", ["ReadWriteOnce"])
    assert names(find_best_match(claim, [free], True)) == ""
    assert names(find_best_match(claim, [free, reserved], True)) == "reserved"
    # A reservation for another claim with the same name (a different uid) does not count.
    taken = pv("taken", "1Gi", ["ReadWriteOnce"], claimRef={"namespace": "ns", "name": "c", "uid": "u0"})
    assert not is_bound_to(taken, claim)
    assert names(find_best_match(claim, [taken], False)) == ""


def test_why_a_named_volume_cannot_serve() -> None:
    claim = pvc("2Gi", ["ReadWriteOnce"], cls="gold")
    assert unsatisfied_because(pv("v", "1Gi", ["ReadWriteOnce"], cls="gold"), claim) == "requested PV is too small"
    assert unsatisfied_because(pv("v", "2Gi", ["ReadWriteOnce"]), claim) == "storageClassName does not match"
    assert unsatisfied_because(pv("v", "2Gi", ["ReadOnlyMany"], cls="gold"), claim) == "incompatible accessMode"
    assert unsatisfied_because(pv("v", "2Gi", ["ReadWriteOnce"], cls="gold"), claim) == ""


def test_claim_class_and_default_class() -> None:
    beta = {"metadata": {"annotations": {"volume.beta.kubernetes.io/storage-class": "old"}},
            "spec": {"storageClassName": "new"}}
    assert claim_class(beta) == "old" and claim_has_class(beta)
    assert not claim_has_class({"spec": {}}) and claim_has_class({"spec": {"storageClassName": ""}})
    classes = [
        {"metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z",
                      "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}},
        {"metadata": {"name": "b", "creationTimestamp": "2026-02-01T00:00:00Z",
                      "annotations": {"storageclass.beta.kubernetes.io/is-default-class": "true"}}},
        {"metadata": {"name": "c", "creationTimestamp": "2026-03-01T00:00:00Z",
                      "annotations": {"storageclass.kubernetes.io/is-default-class": "false"}}},
    ]
    chosen = default_class(classes)
    assert chosen is not None and chosen["metadata"]["name"] == "b"
    assert default_class(classes[2:]) is None


def test_claim_users_follow_pods() -> None:
    users = ClaimUsers()
    pod = {"metadata": {"name": "p", "namespace": "ns"},
           "spec": {"volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": "data"}},
                                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}}]}}
    assert users.update("ADDED", pod) == ["ns/data", "ns/p-scratch"]
    assert users.pods("ns/data") == ["ns/p"]
    moved = {**pod, "spec": {"volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": "other"}}]}}
    assert users.update("MODIFIED", moved) == ["ns/data", "ns/other", "ns/p-scratch"]
    assert users.pods("ns/data") == [] and users.pods("ns/other") == ["ns/p"]
    users.update("DELETED", moved)
    assert users.pods("ns/other") == []


def test_only_scheduled_pods_hold_a_claim() -> None:
    claim = {"metadata": {"name": "data", "namespace": "ns"}}
    pod: JSON = {"metadata": {"name": "p", "namespace": "ns"},
                 "spec": {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]}}
    assert not pod_uses_claim(pod, claim)
    pod["spec"]["nodeName"] = "n1"
    assert pod_uses_claim(pod, claim)
    ephemeral: JSON = {"metadata": {"name": "e", "namespace": "ns", "deletionTimestamp": "2026-01-01T00:00:00Z",
                                    "deletionGracePeriodSeconds": 0},
                       "spec": {"nodeName": "n1", "volumes": [{"name": "data", "ephemeral": {}}]}}
    assert not pod_uses_claim(ephemeral, {"metadata": {"name": "e-data", "namespace": "ns"}})
    ephemeral["metadata"]["deletionGracePeriodSeconds"] = 30
    assert pod_uses_claim(ephemeral, {"metadata": {"name": "e-data", "namespace": "ns"}})
