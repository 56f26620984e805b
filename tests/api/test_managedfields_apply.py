"""Server-side apply with ownership: pruning, conflicts, force, keyed lists, and kubectl's CSA to SSA move."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from nanokube.api.errors import BadRequest, Conflict, InternalError
from nanokube.api.managedfields import LAST_APPLIED, ApplyConflict, FieldSet, apply, update

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
T0, T1, T2, T3 = (f"2024-05-01T10:00:0{i}Z" for i in range(4))


def config(replicas: int | None = None, labels: dict[str, str] | None = None,
           containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": containers or [{"name": "app", "image": "nginx"}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    meta: dict[str, Any] = {"name": "web", "namespace": "default"}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def run(live: dict[str, Any] | None, applied: dict[str, Any], manager: str, now: str = T1, *,
        force: bool = False, **kw: Any) -> dict[str, Any]:
    out = apply(live, applied, manager, force=force, definition=DEPLOYMENT, api_version="apps/v1", now=now, **kw)
    if live is None:
        out["metadata"].update(uid="u1", resourceVersion="1")  # what storage adds on create
    return out


def owned(obj: dict[str, Any], manager: str) -> list[str]:
    for entry in obj["metadata"].get("managedFields", []):
        if entry["manager"] == manager:
            return FieldSet.from_fields_v1(entry["fieldsV1"]).strings()
    return []


def entry_of(obj: dict[str, Any], manager: str) -> dict[str, Any]:
    return next(e for e in obj["metadata"]["managedFields"] if e["manager"] == manager)


def test_create_by_apply_records_the_applied_fields() -> None:
    ports = [{"name": "app", "image": "nginx", "ports": [{"containerPort": 80}]}]
    obj = run(None, config(3, {"app": "web"}, ports), "kubectl", T0)
    entry = entry_of(obj, "kubectl")
    assert {k: entry[k] for k in ("operation", "apiVersion", "time", "fieldsType")} == {
        "operation": "Apply", "apiVersion": "apps/v1", "time": T0, "fieldsType": "FieldsV1"}
    assert json.dumps(entry["fieldsV1"], separators=(",", ":")) == (
        '{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":'
        '{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\\"name\\":\\"app\\"}":{".":{},'
        '"f:image":{},"f:name":{},"f:ports":{"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}":{".":{},'
        '"f:containerPort":{}}}}}}}}}')
    assert obj["spec"]["replicas"] == 3


def test_a_label_no_longer_applied_is_removed() -> None:
    obj = run(None, config(labels={"a": "1", "b": "2"}), "one", T0)
    after = run(obj, config(labels={"a": "1"}), "one", T1)
    assert after["metadata"]["labels"] == {"a": "1"}
    assert ".metadata.labels.b" not in owned(after, "one")
    assert entry_of(after, "one")["time"] == T1
    gone = run(after, config(), "one", T2)
    assert "labels" not in gone["metadata"]


def test_fields_another_manager_owns_survive_when_one_stops_applying() -> None:
    obj = run(None, config(labels={"a": "1"}), "one", T0)
    shared = run(obj, {**config(), "metadata": {"name": "web", "namespace": "default", "labels": {"a": "1"}}},
                 "two", T1)
    after = run(shared, config(labels={}), "one", T2)
    assert after["metadata"]["labels"] == {"a": "1"}
    assert ".metadata.labels.a" in owned(after, "two")


def test_fields_set_by_updaters_are_not_pruned() -> None:
    obj = run(None, config(labels={"a": "1"}), "one", T0)
    edited = copy.deepcopy(obj)
    edited["metadata"]["labels"]["b"] = "2"
    edited["metadata"]["managedFields"] = update(obj, edited, "kubectl-label", definition=DEPLOYMENT,
                                                 api_version="apps/v1", now=T1)
    after = run(edited, config(labels={}), "one", T2)
    assert after["metadata"]["labels"] == {"b": "2"}


def conflict_of(live: dict[str, Any], applied: dict[str, Any], manager: str) -> ApplyConflict:
    with pytest.raises(ApplyConflict) as raised:
        run(live, applied, manager)
    return raised.value


def test_two_appliers_conflict_on_replicas() -> None:
    obj = run(None, config(3), "one", T0)
    err = conflict_of(obj, config(5), "two")
    assert err.conflicts == [("one", ".spec.replicas")]
    assert err.message() == 'Apply failed with 1 conflict: conflict with "one": .spec.replicas'
    assert err.causes() == [{"reason": "FieldManagerConflict", "message": 'conflict with "one"',
                             "field": ".spec.replicas"}]


def test_conflicts_with_an_updater_name_its_api_version() -> None:
    obj = run(None, config(3), "kubectl", T0)
    scaled = copy.deepcopy(obj)
    scaled["spec"]["replicas"] = 5
    scaled["metadata"]["managedFields"] = update(obj, scaled, "one", definition=DEPLOYMENT, api_version="apps/v1",
                                                 now=T1)
    err = conflict_of(scaled, config(3), "kubectl")
    assert err.message() == 'Apply failed with 1 conflict: conflict with "one" using apps/v1: .spec.replicas'
    assert err.causes() == [{"reason": "FieldManagerConflict", "message": 'conflict with "one" using apps/v1',
                             "field": ".spec.replicas"}]
    status = err.error()
    assert isinstance(status, Conflict)
    assert status.to_status()["details"] == {"causes": err.causes()}
    assert status.to_status()["message"] == err.message()


def test_several_conflicts_are_listed_by_manager() -> None:
    obj = run(None, config(3, {"a": "1"}), "one", T0)
    labels_only = {"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "default", "labels": {"b": "1"}}}
    obj = run(obj, labels_only, "another", T1)
    err = conflict_of(obj, config(5, {"a": "2", "b": "2"},
                                  [{"name": "app", "image": "httpd"}]), "two")
    assert err.message() == (
        'Apply failed with 4 conflicts: conflicts with "another":\n- .metadata.labels.b\n'
        'conflicts with "one":\n- .metadata.labels.a\n- .spec.replicas\n'
        '- .spec.template.spec.containers[name="app"].image')
    assert [c["field"] for c in err.causes()] == [
        ".metadata.labels.b", ".metadata.labels.a", ".spec.replicas",
        '.spec.template.spec.containers[name="app"].image']


def test_force_takes_ownership() -> None:
    obj = run(None, config(3), "one", T0)
    forced = run(obj, config(5), "two", T1, force=True)
    assert forced["spec"]["replicas"] == 5
    assert ".spec.replicas" in owned(forced, "two")
    assert ".spec.replicas" not in owned(forced, "one")
    # "one" applying again without replicas no longer removes them: they are not its own any more
    again = run(forced, config(), "one", T2)
    assert again["spec"]["replicas"] == 5


def test_applying_the_live_value_shares_ownership() -> None:
    obj = run(None, config(3), "one", T0)
    shared = run(obj, config(3), "two", T1)
    assert ".spec.replicas" in owned(shared, "one") and ".spec.replicas" in owned(shared, "two")
    assert "time" not in entry_of(shared, "two")  # nothing changed: kube stamps no time
    left = run(shared, config(), "one", T2)
    assert left["spec"]["replicas"] == 3


def test_containers_are_owned_per_name() -> None:
    obj = run(None, config(containers=[{"name": "app", "image": "nginx"}]), "one", T0)
    sidecar = config(containers=[{"name": "proxy", "image": "envoy"}])
    both = run(obj, sidecar, "mesh", T1)
    assert [c["name"] for c in both["spec"]["template"]["spec"]["containers"]] == ["app", "proxy"]
    mesh = entry_of(both, "mesh")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert list(mesh) == ['k:{"name":"proxy"}']
    err = conflict_of(both, config(containers=[{"name": "proxy", "image": "haproxy"}]), "one")
    assert err.conflicts == [("mesh", '.spec.template.spec.containers[name="proxy"].image')]
    dropped = run(both, config(containers=[{"name": "app", "image": "nginx"}]), "mesh", T2)
    assert [c["name"] for c in dropped["spec"]["template"]["spec"]["containers"]] == ["app"]


def test_keyed_items_follow_the_configuration_order() -> None:
    obj = run(None, config(containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]), "one", T0)
    obj = run(obj, config(containers=[{"name": "c", "image": "x"}]), "two", T1)
    names = [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]]
    assert names == ["a", "b", "c"]  # new items go after the live ones
    swapped = run(obj, config(containers=[{"name": "b", "image": "x"}, {"name": "a", "image": "x"}]), "one", T2)
    # shared items take the config's order; "c" (live only) stays right after "b", its live predecessor
    assert [c["name"] for c in swapped["spec"]["template"]["spec"]["containers"]] == ["b", "c", "a"]


def test_an_untracked_object_is_owned_before_first_apply() -> None:
    legacy = config(2, {"a": "1"})
    legacy["metadata"]["uid"] = "u1"
    after = run(legacy, config(2, {"a": "1"}), "kubectl", T1)
    assert [(e["manager"], e["operation"]) for e in after["metadata"]["managedFields"]] == [
        ("kubectl", "Apply"), ("before-first-apply", "Update")]
    err = conflict_of(legacy, config(4), "kubectl")
    assert err.message() == (
        'Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas')


def test_status_applies_own_status_only() -> None:
    obj = run(None, config(3), "one", T0)
    status = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
              "spec": {"replicas": 9}, "status": {"replicas": 3}}
    after = run(obj, status, "ctrl", T1, subresource="status")
    entry = entry_of(after, "ctrl")
    assert entry["subresource"] == "status"
    assert FieldSet.from_fields_v1(entry["fieldsV1"]).strings() == [".status.replicas"]
    with pytest.raises(ApplyConflict) as raised:
        run(after, {**status, "status": {"replicas": 4}}, "other", subresource="status")
    assert raised.value.message() == (
        'Apply failed with 1 conflict: conflict with "ctrl" with subresource "status": .status.replicas')


def test_kubectl_moves_a_client_side_applied_object_to_server_side_apply() -> None:
    # kubectl apply (client side) created the object: an Update entry and the last-applied annotation
    csa = config(2, {"app": "web", "tier": "front"})
    csa["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(csa, sort_keys=True) + "\n"}
    stored = copy.deepcopy(csa)
    stored["metadata"]["uid"] = "u1"
    stored["metadata"]["managedFields"] = update(None, stored, "kubectl-client-side-apply",
                                                 definition=DEPLOYMENT, api_version="apps/v1", now=T0)
    # kubectl apply --server-side with changed replicas: the conflicts restate last-applied, so they pass
    ssa_config = config(3, {"app": "web"})
    applied = run(stored, ssa_config, "kubectl", T1)
    assert applied["spec"]["replicas"] == 3
    assert ".spec.replicas" not in owned(applied, "kubectl-client-side-apply")
    assert applied["metadata"]["annotations"][LAST_APPLIED] == json.dumps(
        ssa_config, sort_keys=True, separators=(",", ":")) + "\n"
    # any other manager gets the conflict
    assert conflict_of(stored, ssa_config, "someone-else").conflicts == [
        ("kubectl-client-side-apply", ".spec.replicas")]
    # kubectl saves the annotation under its own manager
    annotation = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "web", "namespace": "default",
        "annotations": {LAST_APPLIED: applied["metadata"]["annotations"][LAST_APPLIED]}}}
    applied = run(applied, annotation, "kubectl-last-applied", T1)
    assert owned(applied, "kubectl-last-applied") == [f".metadata.annotations.{LAST_APPLIED}"]
    # kubectl's csaupgrade JSON patch: the CSA entry becomes part of kubectl's Apply entry
    migrated = copy.deepcopy(applied)
    csa_entry = entry_of(applied, "kubectl-client-side-apply")
    ssa_entry = entry_of(applied, "kubectl")
    union = FieldSet.from_fields_v1(csa_entry["fieldsV1"]) | FieldSet.from_fields_v1(ssa_entry["fieldsV1"])
    migrated["metadata"]["managedFields"] = [{**ssa_entry, "fieldsV1": union.to_fields_v1()},
                                             entry_of(applied, "kubectl-last-applied")]
    migrated["metadata"]["managedFields"] = update(applied, migrated, "kubectl", definition=DEPLOYMENT,
                                                   api_version="apps/v1", now=T2)
    # the apply again: what only client-side apply had set (the tier label) is now pruned
    final = run(migrated, ssa_config, "kubectl", T3)
    assert final["metadata"]["labels"] == {"app": "web"}
    assert LAST_APPLIED in final["metadata"]["annotations"]
    assert [e["manager"] for e in final["metadata"]["managedFields"]] == ["kubectl-last-applied", "kubectl"]


def test_kubectl_conflicts_not_explained_by_last_applied_remain() -> None:
    csa = config(2)
    csa["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(config(1))}  # live differs from last-applied
    csa["metadata"]["uid"] = "u1"
    csa["metadata"]["managedFields"] = update(None, csa, "kubectl-client-side-apply", definition=DEPLOYMENT,
                                              api_version="apps/v1", now=T0)
    assert conflict_of(csa, config(3), "kubectl").conflicts == [("kubectl-client-side-apply", ".spec.replicas")]


def test_apply_refuses_managed_fields_and_items_without_identity() -> None:
    body = config()
    body["metadata"]["managedFields"] = []
    with pytest.raises(BadRequest, match=r"metadata\.managedFields must be nil"):
        run(None, body, "kubectl")
    twice = config(containers=[{"name": "a", "image": "x"}, {"name": "a", "image": "y"}])
    with pytest.raises(InternalError) as raised:
        run(None, twice, "kubectl")
    assert raised.value.message == (
        'failed to create typed patch object (default/web; apps/v1, Kind=Deployment): '
        '.spec.template.spec.containers: duplicate entries for key [name="a"]')
    bad = run(None, config(), "kubectl")
    bad["metadata"]["managedFields"] = [{"manager": "m", "operation": "Bogus"}]
    with pytest.raises(InternalError, match="failed to decode managed fields"):
        run(bad, config(), "kubectl")


def test_nulls_in_the_configuration_do_not_reach_the_object() -> None:
    obj = run(None, config(3), "one", T0)
    cleared = config()
    cleared["spec"]["replicas"] = None
    after = run(obj, cleared, "one", T1)
    assert "replicas" not in after["spec"]
    assert ".spec.replicas" in owned(after, "one")


def test_inputs_are_left_alone() -> None:
    obj = run(None, config(3, {"a": "1"}), "one", T0)
    live, applied = copy.deepcopy(obj), config(5, {})
    frozen = (copy.deepcopy(live), copy.deepcopy(applied))
    run(live, applied, "one", T1)
    assert (live, applied) == frozen


def test_set_lists_are_owned_per_value() -> None:
    def with_finalizers(*names: str) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default", "finalizers": list(names)}}

    obj = run(None, {**config(), **with_finalizers("a.io/one")}, "one", T0)
    obj = run(obj, with_finalizers("b.io/two"), "two", T1)
    assert obj["metadata"]["finalizers"] == ["a.io/one", "b.io/two"]
    assert '.metadata.finalizers[="b.io/two"]' in owned(obj, "two")
    obj = run(obj, config(), "one", T2)
    assert obj["metadata"]["finalizers"] == ["b.io/two"]


def test_custom_resources_merge_by_their_schema() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "routes": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["host"],
                   "items": {"type": "object", "properties": {"host": {"type": "string"},
                                                              "port": {"type": "integer"}}}},
        "size": {"type": "integer"}}}}}

    def route(*hosts: str, size: int | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"routes": [{"host": h, "port": 80} for h in hosts]}
        if size is not None:
            spec["size"] = size
        return {"apiVersion": "x.io/v1", "kind": "Route", "metadata": {"name": "r"}, "spec": spec}

    def go(live: dict[str, Any] | None, body: dict[str, Any], manager: str) -> dict[str, Any]:
        return apply(live, body, manager, force=False, definition=None, api_version="x.io/v1", now=T1,
                     schema=schema)

    obj = go(None, route("a", size=1), "one")
    obj = go(obj, route("b"), "two")
    assert [r["host"] for r in obj["spec"]["routes"]] == ["a", "b"]
    obj = go(obj, route("a"), "one")
    assert obj["spec"] == {"routes": [{"host": "a", "port": 80}, {"host": "b", "port": 80}]}
    with pytest.raises(ApplyConflict) as raised:
        go(obj, {**route(), "spec": {"routes": [{"host": "b", "port": 81}]}}, "one")
    assert raised.value.conflicts == [("two", '.spec.routes[host="b"].port')]


def test_a_struct_no_longer_applied_goes_with_its_unowned_defaults() -> None:
    with_strategy = config()
    with_strategy["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": 2}}
    obj = run(None, with_strategy, "one", T0)
    obj["spec"]["strategy"]["type"] = "RollingUpdate"  # the server's defaults, owned by nobody
    obj["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = "25%"
    obj["spec"]["revisionHistoryLimit"] = 10
    after = run(obj, config(), "one", T1)
    assert "strategy" not in after["spec"]  # kube removes it whole (and defaults it again afterwards)
    assert after["spec"]["revisionHistoryLimit"] == 10  # unowned, but never applied by "one": kept
