"""VolumeBinding: missing or unbound-immediate claims, bound volumes' node affinity, WaitForFirstConsumer."""

from __future__ import annotations

from typing import Any

from sched_helpers import info, node, passed, pod, reasons, run_filter, snapshot

from nanokube.scheduler.framework import Code
from nanokube.scheduler.handle import Handle
from nanokube.scheduler.plugins.volumebinding import CONFLICT, NO_VOLUME, UNBOUND_IMMEDIATE, VolumeBinding

JSON = dict[str, Any]


def claim(name: str, volume: str = "", storage_class: str = "local-path") -> JSON:
    spec: JSON = {"storageClassName": storage_class, "accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": "1Gi"}}}
    if volume:
        spec["volumeName"] = volume
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def volume(name: str, on_node: str | None = None, storage_class: str = "local-path", size: str = "5Gi") -> JSON:
    spec: JSON = {"storageClassName": storage_class, "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"]}
    if on_node:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [on_node]}]}]}}
    return {"metadata": {"name": name, "resourceVersion": "1"}, "spec": spec, "status": {"phase": "Available"}}


def handle(claims: list[JSON], volumes: list[JSON] | None = None, classes: list[JSON] | None = None) -> Handle:
    return Handle(caches={
        "persistentvolumeclaims": {f"default/{c['metadata']['name']}": c for c in claims},
        "persistentvolumes": {v["metadata"]["name"]: v for v in volumes or []},
        "storageclasses": {c["metadata"]["name"]: c for c in classes or []}})


WFFC = {"metadata": {"name": "local-path"}, "provisioner": "rancher.io/local-path",
        "volumeBindingMode": "WaitForFirstConsumer"}
STATIC = {"metadata": {"name": "manual"}, "provisioner": "kubernetes.io/no-provisioner",
          "volumeBindingMode": "WaitForFirstConsumer"}
IMMEDIATE = {"metadata": {"name": "fast"}, "provisioner": "example.com/fast"}


def with_claim(name: str, claim_name: str) -> JSON:
    return pod(name, volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}])


def test_pods_without_claims_skip_the_plugin() -> None:
    _, _, status = run_filter(VolumeBinding(handle([])), info(pod("p")), snapshot([node("a")]))
    assert status.skip


def test_a_missing_claim_is_unresolvable_with_kubes_message() -> None:
    _, _, status = run_filter(VolumeBinding(handle([])), info(with_claim("p", "data")), snapshot([node("a")]))
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.message() == 'persistentvolumeclaim "data" not found'


def test_unbound_immediate_claims_wait_for_the_volume_controller() -> None:
    plugin = VolumeBinding(handle([claim("data", storage_class="fast")], classes=[IMMEDIATE]))
    _, _, status = run_filter(plugin, info(with_claim("p", "data")), snapshot([node("a")]))
    assert status.message() == UNBOUND_IMMEDIATE


def test_a_bound_volume_pins_the_pod_to_its_node() -> None:
    plugin = VolumeBinding(handle([claim("data", volume="pv1")], [volume("pv1", on_node="b")], [WFFC]))
    snap = snapshot([node("a"), node("b")])
    result, _, _ = run_filter(plugin, info(with_claim("p", "data")), snap)
    assert passed(snap, result) == {"b"}
    assert reasons(snap, result, "a") == [CONFLICT]


def test_unbound_wait_for_first_consumer_claims_fit_anywhere_when_provisioned() -> None:
    plugin = VolumeBinding(handle([claim("data")], classes=[WFFC]))
    result, _, status = run_filter(plugin, info(with_claim("p", "data")), snapshot([node("a"), node("b")]))
    assert status.success and result is None


def test_static_volumes_must_exist_on_the_node() -> None:
    volumes = [volume("small", on_node="a", storage_class="manual", size="100Mi"),
               volume("fits", on_node="b", storage_class="manual")]
    plugin = VolumeBinding(handle([claim("data", storage_class="manual")], volumes, [STATIC]))
    snap = snapshot([node("a"), node("b"), node("c")])
    result, _, _ = run_filter(plugin, info(with_claim("p", "data")), snap)
    assert passed(snap, result) == {"b"}
    assert reasons(snap, result, "a") == [NO_VOLUME]
