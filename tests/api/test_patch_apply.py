"""Server-side apply (first version): the applied configuration merged into the live object by list types."""

from __future__ import annotations

import copy
from typing import Any

from nanokube.api.patch import apply_patch

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
POD = "io.k8s.api.core.v1.Pod"


def live_deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "namespace": "default", "uid": "u1", "finalizers": ["a"]},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "A", "value": "1"}],
                            "args": ["--x"],
                            "imagePullPolicy": "Always",
                        },
                        {"name": "side", "image": "busybox"},
                    ],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                    "nodeSelector": {"disk": "ssd", "zone": "a"},
                },
            },
        },
        "status": {"replicas": 3},
    }


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return found


def test_no_live_object_means_the_applied_configuration() -> None:
    applied = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": None}, "data": {"a": "b"}}
    result = apply_patch(None, applied, "io.k8s.api.core.v1.ConfigMap")
    assert result == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    result["data"]["a"] = "changed"
    assert applied["data"] == {"a": "b"}


def test_containers_merge_by_name_and_keep_live_fields() -> None:
    applied = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "new", "image": "n"}]}},
        },
    }
    result = apply_patch(live_deployment(), applied, DEPLOYMENT)
    assert result["spec"]["replicas"] == 2
    assert [c["name"] for c in containers(result)] == ["app", "side", "new"]
    app = containers(result)[0]
    assert app["image"] == "nginx:1.27"
    assert app["imagePullPolicy"] == "Always"
    assert app["env"] == [{"name": "A", "value": "1"}]
    assert result["metadata"]["uid"] == "u1"
    assert result["status"] == {"replicas": 3}


def test_atomic_lists_and_maps_are_replaced() -> None:
    applied = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "app", "args": ["--y"]}],
                    "tolerations": [{"key": "b", "operator": "Exists"}],
                    "nodeSelector": {"zone": "b"},
                }
            }
        }
    }
    result = apply_patch(live_deployment(), applied, DEPLOYMENT)
    spec = result["spec"]["template"]["spec"]
    assert containers(result)[0]["args"] == ["--y"]
    assert spec["tolerations"] == [{"key": "b", "operator": "Exists"}]
    assert spec["nodeSelector"] == {"zone": "b"}


def test_set_lists_are_unioned() -> None:
    result = apply_patch(live_deployment(), {"metadata": {"finalizers": ["b", "a"]}}, DEPLOYMENT)
    assert result["metadata"]["finalizers"] == ["a", "b"]


def test_map_list_item_matches_when_a_defaulted_key_is_left_out() -> None:
    applied = {"spec": {"template": {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80, "name": "http"}]}]}}}}
    result = apply_patch(live_deployment(), applied, DEPLOYMENT)
    assert containers(result)[0]["ports"] == [{"containerPort": 80, "protocol": "TCP", "name": "http"}]


def test_map_list_items_with_both_keys_are_told_apart() -> None:
    live = {"spec": {"containers": [{"name": "dns", "ports": [{"containerPort": 53, "protocol": "UDP"}]}]}}
    applied = {"spec": {"containers": [{"name": "dns", "ports": [{"containerPort": 53, "protocol": "TCP"}]}]}}
    result = apply_patch(live, applied, POD)
    assert result["spec"]["containers"][0]["ports"] == [
        {"containerPort": 53, "protocol": "UDP"},
        {"containerPort": 53, "protocol": "TCP"},
    ]


def test_null_removes_a_field() -> None:
    result = apply_patch(live_deployment(), {"spec": {"template": {"metadata": {"labels": {"app": None}}}}}, DEPLOYMENT)
    assert result["spec"]["template"]["metadata"]["labels"] == {}


def test_without_definition_maps_merge_and_lists_replace() -> None:
    live = {"spec": {"a": {"x": 1}, "l": [1, 2]}}
    assert apply_patch(live, {"spec": {"a": {"y": 2}, "l": [3]}}, None) == {"spec": {"a": {"x": 1, "y": 2}, "l": [3]}}


def test_inputs_are_left_alone() -> None:
    live = live_deployment()
    before = copy.deepcopy(live)
    applied = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "v2"}]}}}}
    result = apply_patch(live, applied, DEPLOYMENT)
    containers(result)[0]["env"].append({"name": "B"})
    assert live == before
