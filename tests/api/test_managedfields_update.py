"""Ownership after non-apply writes (create, update, patch, status), and managedFields entries."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from test_managedfields_fieldset import KUBE_CREATE_FIELDS

from nanokube.api.managedfields import FieldSet, ManagedFieldsError, decode, default_manager, encode, update
from nanokube.api.managedfields.updater import Entry

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
T0, T1, T2 = "2024-05-01T10:00:00Z", "2024-05-01T10:00:01Z", "2024-05-01T10:00:02Z"


def defaulted_deployment() -> dict[str, Any]:
    """A Deployment as `kubectl create -f` sends it, after the server's defaults."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}, "uid": "u1",
                     "creationTimestamp": T0, "generation": 1},
        "spec": {
            "replicas": 1, "progressDeadlineSeconds": 600, "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": {"app": "nginx"}},
                "spec": {
                    "containers": [{"name": "nginx", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent",
                                    "ports": [{"containerPort": 80, "protocol": "TCP"}], "resources": {},
                                    "terminationMessagePath": "/dev/termination-log",
                                    "terminationMessagePolicy": "File"}],
                    "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                    "securityContext": {}, "terminationGracePeriodSeconds": 30}}},
        "status": {},
    }


def write(live: dict[str, Any] | None, new: dict[str, Any], manager: str, now: str, **kw: Any) -> dict[str, Any]:
    """``new`` stored with the managedFields ``update`` computes (as the API server will do)."""
    out = copy.deepcopy(new)
    entries = update(live, new, manager, definition=DEPLOYMENT, api_version="apps/v1", now=now, **kw)
    if entries:
        out["metadata"]["managedFields"] = entries
    else:
        out["metadata"].pop("managedFields", None)
    return out


def owners(obj: dict[str, Any]) -> dict[str, list[str]]:
    return {f"{e['manager']}/{e['operation']}{'/' + e['subresource'] if e.get('subresource') else ''}":
            FieldSet.from_fields_v1(e["fieldsV1"]).strings() for e in obj["metadata"].get("managedFields", [])}


def changed(obj: dict[str, Any], **spec: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["spec"].update(spec)
    return out


def test_create_records_what_kube_records() -> None:
    created = write(None, defaulted_deployment(), "kubectl-create", T0)
    [entry] = created["metadata"]["managedFields"]
    assert list(entry) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"], entry["time"]) == (
        "kubectl-create", "Update", "apps/v1", T0)
    assert json.dumps(entry["fieldsV1"], separators=(",", ":")) == KUBE_CREATE_FIELDS


def test_update_takes_changed_fields_from_other_managers() -> None:
    created = write(None, defaulted_deployment(), "kubectl-create", T0)
    scaled = write(created, changed(created, replicas=3), "kubectl-scale", T1)
    entries = {e["manager"]: e for e in scaled["metadata"]["managedFields"]}
    assert FieldSet.from_fields_v1(entries["kubectl-scale"]["fieldsV1"]).strings() == [".spec.replicas"]
    assert entries["kubectl-scale"]["time"] == T1
    creator = FieldSet.from_fields_v1(entries["kubectl-create"]["fieldsV1"])
    assert ("f:spec", "f:replicas") not in creator
    assert ("f:spec", "f:revisionHistoryLimit") in creator
    assert entries["kubectl-create"]["time"] == T0
    assert [e["manager"] for e in scaled["metadata"]["managedFields"]] == ["kubectl-create", "kubectl-scale"]


def test_update_adding_a_whole_map_owns_the_map_too() -> None:
    created = write(None, defaulted_deployment(), "kubectl-create", T0)
    annotated = copy.deepcopy(created)
    annotated["metadata"]["annotations"] = {"note": "x"}
    after = write(created, annotated, "kubectl-annotate", T1)
    assert owners(after)["kubectl-annotate/Update"] == [".metadata.annotations", ".metadata.annotations.note"]
    more = copy.deepcopy(after)
    more["metadata"]["annotations"]["other"] = "y"
    again = write(after, more, "kubectl-annotate", T2)  # the map existed: only the new key is gained
    assert owners(again)["kubectl-annotate/Update"] == [
        ".metadata.annotations", ".metadata.annotations.note", ".metadata.annotations.other"]


def test_removed_fields_leave_every_manager() -> None:
    created = write(None, defaulted_deployment(), "kubectl-create", T0)
    smaller = copy.deepcopy(created)
    del smaller["spec"]["template"]["spec"]["containers"][0]["ports"]
    after = write(created, smaller, "kubectl-edit", T1)
    assert not any("ports" in p for p in owners(after)["kubectl-create/Update"])
    assert "kubectl-edit/Update" not in owners(after)  # removing gains nothing: no entry, no time


def test_noop_update_changes_nothing() -> None:
    created = write(None, defaulted_deployment(), "kubectl-create", T0)
    again = write(created, copy.deepcopy(created), "kubectl-replace", T1)
    assert again["metadata"]["managedFields"] == created["metadata"]["managedFields"]


def test_writer_keeps_its_old_fields_and_gets_a_new_time() -> None:
    created = write(None, defaulted_deployment(), "kubectl-create", T0)
    after = write(created, changed(created, minReadySeconds=5), "kubectl-create", T1)
    [entry] = after["metadata"]["managedFields"]
    fields = FieldSet.from_fields_v1(entry["fieldsV1"])
    assert ("f:spec", "f:minReadySeconds") in fields and ("f:spec", "f:replicas") in fields
    assert entry["time"] == T1


def test_objects_without_managed_fields_stay_untracked() -> None:
    legacy = defaulted_deployment()
    assert update(legacy, changed(legacy, replicas=5), "kubectl-edit", definition=DEPLOYMENT,
                  api_version="apps/v1", now=T1) == []


def test_client_sent_managed_fields_win_and_empty_ones_reset() -> None:
    created = write(None, defaulted_deployment(), "kubectl-create", T0)
    migrated = copy.deepcopy(created)
    migrated["metadata"]["managedFields"][0].update(manager="kubectl", operation="Apply")
    after = write(created, migrated, "kubectl", T1)  # a JSON patch replacing /metadata/managedFields
    assert [(e["manager"], e["operation"], e["time"]) for e in after["metadata"]["managedFields"]] == [
        ("kubectl", "Apply", T0)]
    for reset in ([], [{}]):
        cleared = copy.deepcopy(created)
        cleared["metadata"]["managedFields"] = reset
        assert "managedFields" not in write(created, cleared, "kubectl-patch", T1)["metadata"]
    absent = copy.deepcopy(created)
    del absent["metadata"]["managedFields"]
    assert write(created, absent, "kubectl-replace", T1)["metadata"]["managedFields"] == \
        created["metadata"]["managedFields"]


def test_main_resource_writes_never_own_status_and_status_writes_never_own_spec() -> None:
    created = write(None, defaulted_deployment(), "kubectl-create", T0)
    both = changed(created, replicas=4)
    both["status"] = {"replicas": 1, "readyReplicas": 1}
    main = write(created, both, "someone", T1)
    assert owners(main)["someone/Update"] == [".spec.replicas"]
    status = write(created, both, "kube-controller-manager", T1, subresource="status")
    entry = next(e for e in status["metadata"]["managedFields"] if e.get("subresource"))
    assert (entry["manager"], entry["subresource"], list(entry)[-1]) == (
        "kube-controller-manager", "status", "subresource")
    assert FieldSet.from_fields_v1(entry["fieldsV1"]).strings() == [".status.readyReplicas", ".status.replicas"]


def test_status_writes_ignore_managed_fields_in_the_body() -> None:
    created = write(None, defaulted_deployment(), "kubectl-create", T0)
    body = copy.deepcopy(created)
    body["metadata"]["managedFields"] = []
    body["status"] = {"replicas": 1}
    after = write(created, body, "kubelet", T1, subresource="status")
    assert set(owners(after)) == {"kubectl-create/Update", "kubelet/Update/status"}


def test_more_than_ten_updaters_fold_into_ancient_changes() -> None:
    obj = write(None, defaulted_deployment(), "creator", "2024-05-01T10:00:00Z")
    for i in range(11):
        new = copy.deepcopy(obj)
        new["metadata"].setdefault("annotations", {})[f"a{i}"] = "x"
        obj = write(obj, new, f"writer-{i}", f"2024-05-01T10:01:{i:02d}Z")
    managers = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(managers) == 10
    # the 11th updater folded creator and writer-0 into the bucket; the 12th folded writer-1 into it
    assert managers == ["ancient-changes", *(f"writer-{i}" for i in range(2, 11))]
    bucket = obj["metadata"]["managedFields"][0]
    fields = FieldSet.from_fields_v1(bucket["fieldsV1"])
    assert ("f:spec", "f:replicas") in fields and ("f:metadata", "f:annotations", "f:a1") in fields
    assert bucket["time"] == "2024-05-01T10:01:01Z"  # the time of the newest entry folded in


def test_entries_sort_apply_first_then_by_time() -> None:
    fields = FieldSet([("f:spec", "f:replicas")])
    managers = {
        '{"manager":"b","operation":"Update","apiVersion":"v1"}': Entry(fields, "v1", False, T2),
        '{"manager":"z","operation":"Apply"}': Entry(fields, "v1", True, T2),
        '{"manager":"a","operation":"Update","apiVersion":"v1"}': Entry(fields, "v1", False, T1),
        '{"manager":"c","operation":"Update","apiVersion":"v1","subresource":"status"}':
            Entry(fields, "v1", False, T1),
    }
    assert [(e["manager"], e["operation"]) for e in encode(managers)] == [
        ("z", "Apply"), ("a", "Update"), ("c", "Update"), ("b", "Update")]
    assert decode(encode(managers)) == managers


@pytest.mark.parametrize("entry", [
    {"manager": "m", "operation": "Create", "apiVersion": "v1", "fieldsType": "FieldsV1"},
    {"manager": "m", "operation": "Update", "fieldsType": "FieldsV1"},
    {"manager": "m", "operation": "Update", "apiVersion": "v1"},
    {"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV2"},
    {"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:a": 1}},
])
def test_entries_kube_refuses(entry: dict[str, Any]) -> None:
    with pytest.raises(ManagedFieldsError):
        decode([entry])


def test_undecodable_sent_entries_fall_back_to_the_live_ones() -> None:
    created = write(None, defaulted_deployment(), "kubectl-create", T0)
    body = changed(created, replicas=2)
    body["metadata"]["managedFields"] = [{"manager": "m", "operation": "Nope"}]
    after = write(created, body, "kubectl-edit", T1)
    assert set(owners(after)) == {"kubectl-create/Update", "kubectl-edit/Update"}


@pytest.mark.parametrize(("agent", "manager"), [
    ("kubectl/v1.37.0 (linux/amd64) kubernetes/abcdef", "kubectl"),
    ("OpenAPI-Generator/37.0.0/python", "OpenAPI-Generator"),
    ("kube-controller-manager/v1.37.0 (linux/amd64)/controller", "kube-controller-manager"),
    ("tab\there", "tabhere"),
    ("", ""),
    ("é" * 100, "é" * 64),
])
def test_default_manager_from_user_agent(agent: str, manager: str) -> None:
    assert default_manager(agent) == manager


def test_an_unnamed_writer_is_recorded_as_unknown() -> None:
    [entry] = update(None, defaulted_deployment(), "", definition=DEPLOYMENT, api_version="apps/v1", now=T0)
    assert entry["manager"] == "unknown"


def test_custom_resources_are_created_from_an_empty_object() -> None:
    thing = {"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t", "uid": "u"},
             "spec": {"size": 1}}
    [entry] = update(None, thing, "kubectl-create", definition=None, api_version="x.io/v1", now=T0,
                     reset=FieldSet())
    assert entry["fieldsV1"] == {"f:spec": {".": {}, "f:size": {}}}


def test_raw_extensions_are_owned_whole() -> None:
    revision = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r", "uid": "u"},
                "data": {"spec": {"template": {"x": 1}}}, "revision": 1}
    [entry] = update(None, revision, "kube-controller-manager", definition="io.k8s.api.apps.v1.ControllerRevision",
                     api_version="apps/v1", now=T0)
    assert entry["fieldsV1"] == {"f:data": {}, "f:revision": {}}


def test_changing_an_item_field_moves_just_that_field() -> None:
    created = write(None, defaulted_deployment(), "kubectl-create", T0)
    edited = copy.deepcopy(created)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    after = write(created, edited, "kubectl-set", T1)
    assert owners(after)["kubectl-set/Update"] == ['.spec.template.spec.containers[name="nginx"].image']
    assert '.spec.template.spec.containers[name="nginx"].image' not in owners(after)["kubectl-create/Update"]
