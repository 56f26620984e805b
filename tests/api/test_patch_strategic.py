"""Strategic merge patch on real Kubernetes types, with the patches kubectl and kubelets actually send."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from nanokube.api.patch import (
    PatchApplyError,
    PatchDecodeError,
    PatchError,
    PatchMergeError,
    PatchUnsupportedError,
    strategic_merge_patch,
)

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
POD = "io.k8s.api.core.v1.Pod"
SERVICE = "io.k8s.api.core.v1.Service"


def deployment() -> dict[str, Any]:
    """A live Deployment as the server stores it after ``kubectl apply -f deploy1b.yaml`` and defaulting."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "namespace": "default", "labels": {"app": "x"}, "resourceVersion": "7"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "x"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "terminationMessagePath": "/dev/termination-log",
                        }
                    ],
                    "restartPolicy": "Always",
                    "tolerations": [
                        {"key": "a", "operator": "Exists"},
                        {"key": "b", "operator": "Exists"},
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    }


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in pod_spec(obj)["containers"] if c["name"] == name]
    assert len(found) == 1, f"container {name} appears {len(found)} times"
    return found[0]


def directive_keys(value: Any) -> list[str]:
    """Every key starting with ``$`` anywhere in ``value``."""
    if isinstance(value, dict):
        own = [k for k in value if k.startswith("$")]
        return own + [k for v in value.values() for k in directive_keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in directive_keys(v)]
    return []


# -- kubectl apply (3-way patch, Appendix A of the compat notes) ------------------------------------------------------
def test_apply_switching_to_recreate_with_retain_keys_and_element_order() -> None:
    live = deployment()
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"kind":"Deployment"}'}},
        "spec": {
            "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
                    "containers": [{"env": None, "name": "app"}, {"image": "busybox", "name": "side"}],
                }
            },
        },
    }
    result = strategic_merge_patch(live, patch, DEPLOYMENT)

    assert result["spec"]["strategy"] == {"type": "Recreate"}
    assert [c["name"] for c in pod_spec(result)["containers"]] == ["app", "side"]
    app = container(result, "app")
    assert "env" not in app
    assert app["image"] == "nginx"
    assert app["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert container(result, "side") == {"image": "busybox", "name": "side"}
    assert result["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": '{"kind":"Deployment"}'
    }
    assert result["metadata"]["labels"] == {"app": "x"}
    assert directive_keys(result) == []


def test_retain_keys_drops_unlisted_keys_even_without_nulls() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_must_list_every_key_the_patch_sets() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {"maxSurge": 1}}}}
    with pytest.raises(PatchDecodeError, match="invalid patch format of retainKeys") as info:
        strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert info.value.code == 400


def test_volumes_merge_by_name_and_retain_keys() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "volumes": [{"$retainKeys": ["configMap", "name"], "name": "data", "configMap": {"name": "cm"}}]
                }
            }
        }
    }
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert pod_spec(result)["volumes"] == [{"name": "data", "configMap": {"name": "cm"}}]


# -- kubectl set image / rollout restart / patch ---------------------------------------------------------------------
def test_set_image_merges_the_container_by_name() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}],
                    "containers": [{"image": "nginx:1.27", "name": "app"}],
                }
            }
        }
    }
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    app = container(result, "app")
    assert app["image"] == "nginx:1.27"
    assert app["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert len(pod_spec(result)["containers"]) == 1


def test_rollout_restart_adds_a_template_annotation() -> None:
    stamp = "2026-11-27T18:03:21Z"
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert result["spec"]["template"]["metadata"] == {
        "labels": {"app": "x"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": stamp},
    }


def test_scalar_replacement_and_null_deletion() -> None:
    result = strategic_merge_patch(deployment(), {"spec": {"replicas": 5, "strategy": None}}, DEPLOYMENT)
    assert result["spec"]["replicas"] == 5
    assert "strategy" not in result["spec"]


def test_new_container_without_order_directive_goes_first_like_go() -> None:
    # apimachinery interleaves patch items and live-only items by the live order; a new item is not in the
    # live list, so it wins every comparison and lands ahead of the live-only containers.
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}}
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert [c["name"] for c in pod_spec(result)["containers"]] == ["side", "app"]


def test_element_order_reorders_live_items() -> None:
    live = deployment()
    pod_spec(live)["containers"].append({"name": "side", "image": "busybox"})
    patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "app"}]}}}}
    result = strategic_merge_patch(live, patch, DEPLOYMENT)
    assert [c["name"] for c in pod_spec(result)["containers"]] == ["side", "app"]


def test_element_order_must_agree_with_the_patch_list() -> None:
    live = deployment()
    pod_spec(live)["containers"].append({"name": "side", "image": "busybox"})
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
                    "containers": [{"name": "side", "image": "b2"}, {"name": "app", "image": "n2"}],
                }
            }
        }
    }
    with pytest.raises(PatchError, match="doesn't match"):
        strategic_merge_patch(live, patch, DEPLOYMENT)


# -- keyed list items ------------------------------------------------------------------------------------------------
def test_null_inside_a_keyed_item_deletes_that_field_only() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": None}]}]}}}}
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert container(result, "app")["env"] == [{"name": "A"}, {"name": "B", "value": "2"}]


def test_patch_delete_removes_the_item_with_that_key() -> None:
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"$patch": "delete", "name": "A"}]}]}}}
    }
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert container(result, "app")["env"] == [{"name": "B", "value": "2"}]


def test_patch_replace_in_a_list_replaces_the_list() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "app", "env": [{"$patch": "replace"}, {"name": "C", "value": "3"}]}]}
            }
        }
    }
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert container(result, "app")["env"] == [{"name": "C", "value": "3"}]


def test_patch_replace_and_delete_in_maps() -> None:
    patch = {
        "metadata": {"labels": {"$patch": "replace", "tier": "web"}},
        "spec": {"selector": {"$patch": "delete"}},
    }
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert result["metadata"]["labels"] == {"tier": "web"}
    assert result["spec"]["selector"] == {}


def test_patch_merge_directive_is_accepted_and_dropped() -> None:
    patch = {"metadata": {"labels": {"$patch": "merge", "tier": "web"}}}
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert result["metadata"]["labels"] == {"app": "x", "tier": "web"}


def test_container_ports_merge_by_container_port() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]}
                    ]
                }
            }
        }
    }
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    ports = container(result, "app")["ports"]
    assert {"containerPort": 80, "protocol": "TCP", "name": "http"} in ports
    assert {"containerPort": 443} in ports
    assert len(ports) == 2


def test_service_ports_merge_by_port() -> None:
    live = {"spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}], "type": "ClusterIP"}}
    result = strategic_merge_patch(live, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, SERVICE)
    assert result["spec"]["ports"] == [{"port": 80, "targetPort": 9090, "protocol": "TCP"}]


def test_missing_merge_key_is_refused_like_go() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"image": "nginx:2"}]}}}}
    with pytest.raises(PatchMergeError, match="does not contain declared merge key: name") as info:
        strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert info.value.code == 500
    assert isinstance(info.value, PatchApplyError)


def test_unknown_patch_directive_is_refused() -> None:
    with pytest.raises(PatchMergeError, match="unknown patch type: shuffle"):
        strategic_merge_patch(deployment(), {"metadata": {"labels": {"$patch": "shuffle"}}}, DEPLOYMENT)


# -- lists without a merge strategy, lists of scalars --------------------------------------------------------------
def test_tolerations_have_no_strategy_and_are_replaced() -> None:
    patch = {"spec": {"template": {"spec": {"tolerations": [{"key": "c", "operator": "Exists"}]}}}}
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert pod_spec(result)["tolerations"] == [{"key": "c", "operator": "Exists"}]


def test_finalizers_merge_as_a_set() -> None:
    live = {"metadata": {"name": "p", "finalizers": ["a", "b"]}}
    result = strategic_merge_patch(live, {"metadata": {"finalizers": ["b", "c"]}}, POD)
    # "b" is in both lists: the patch items keep the patch order and "a" (live only) precedes "b" live.
    assert result["metadata"]["finalizers"] == ["a", "b", "c"]


def test_delete_from_primitive_list() -> None:
    live = {"metadata": {"name": "p", "finalizers": ["a", "b", "c"]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zz"]}}
    result = strategic_merge_patch(live, patch, POD)
    assert result["metadata"]["finalizers"] == ["a", "c"]
    assert directive_keys(result) == []


def test_delete_from_primitive_list_never_creates_the_list() -> None:
    live = {"metadata": {"name": "p"}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}
    assert strategic_merge_patch(live, patch, POD) == {"metadata": {"name": "p"}}


def test_primitive_list_with_element_order() -> None:
    live = {"metadata": {"name": "p", "finalizers": ["a", "b", "c"]}}
    patch = {
        "metadata": {
            "$setElementOrder/finalizers": ["c", "a"],
            "$deleteFromPrimitiveList/finalizers": ["b"],
        }
    }
    result = strategic_merge_patch(live, patch, POD)
    assert result["metadata"]["finalizers"] == ["c", "a"]


def test_container_args_are_atomic_and_replaced() -> None:
    live = {"spec": {"containers": [{"name": "c", "image": "i", "args": ["a", "b"]}]}}
    patch = {"spec": {"containers": [{"name": "c", "args": ["z"]}]}}
    result = strategic_merge_patch(live, patch, POD)
    assert result["spec"]["containers"][0]["args"] == ["z"]


# -- status patches from kubelets --------------------------------------------------------------------------------
def test_pod_status_conditions_merge_by_type_with_element_order() -> None:
    live = {
        "metadata": {"name": "p"},
        "status": {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
            ],
        },
    }
    patch = {
        "status": {
            "$setElementOrder/conditions": [{"type": "Initialized"}, {"type": "Ready"}, {"type": "PodScheduled"}],
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True", "reason": None}],
            "phase": "Running",
        }
    }
    result = strategic_merge_patch(live, patch, POD)
    assert result["status"]["phase"] == "Running"
    assert result["status"]["conditions"] == [
        {"type": "Initialized", "status": "True"},
        {"type": "Ready", "status": "True"},
        {"type": "PodScheduled", "status": "True"},
    ]


# -- hygiene -------------------------------------------------------------------------------------------------------
def test_inputs_are_left_alone() -> None:
    live = deployment()
    patch = {
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
            "template": {"spec": {"containers": [{"name": "app", "env": [{"$patch": "delete", "name": "A"}]}]}},
        }
    }
    live_before, patch_before = copy.deepcopy(live), copy.deepcopy(patch)
    result = strategic_merge_patch(live, patch, DEPLOYMENT)
    assert live == live_before
    assert patch == patch_before
    result["spec"]["template"]["metadata"]["labels"]["changed"] = "yes"
    assert "changed" not in live["spec"]["template"]["metadata"]["labels"]


def test_directives_inside_new_values_never_leak() -> None:
    live = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "new",
                    "image": "busybox",
                    "$setElementOrder/env": [{"name": "X"}],
                    "env": [{"name": "X", "value": "1"}, {"name": "Y", "$patch": "delete"}],
                    "resources": {"limits": {"cpu": None, "memory": "1Gi"}},
                }
            ],
            "securityContext": {"$retainKeys": ["runAsUser"], "runAsUser": 1000},
        }
    }
    result = strategic_merge_patch(live, patch, POD)
    assert directive_keys(result) == []
    new = next(c for c in result["spec"]["containers"] if c["name"] == "new")
    assert new["env"] == [{"name": "X", "value": "1"}]
    assert new["resources"] == {"limits": {"memory": "1Gi"}}
    assert result["spec"]["securityContext"] == {"runAsUser": 1000}


def test_unknown_kind_is_unsupported() -> None:
    with pytest.raises(PatchUnsupportedError, match="application/merge-patch\\+json") as info:
        strategic_merge_patch({"spec": {}}, {"spec": {"x": 1}}, None)
    assert info.value.code == 415
    with pytest.raises(PatchUnsupportedError):
        strategic_merge_patch({"spec": {}}, {"spec": {"x": 1}}, "io.example.v1.NoSuchKind")


def test_lists_of_lists_are_refused() -> None:
    live = {"metadata": {"name": "p", "finalizers": [["a"]]}}
    with pytest.raises(PatchApplyError, match="lists of lists"):
        strategic_merge_patch(live, {"metadata": {"finalizers": [["b"]]}}, POD)


def test_round_trip_through_json_keeps_the_result_serialisable() -> None:
    result = strategic_merge_patch(deployment(), {"spec": {"replicas": 2}}, DEPLOYMENT)
    assert json.loads(json.dumps(result)) == result
