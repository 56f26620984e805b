"""Error responses as kube-apiserver words them: code, reason, message and details of the ``metav1.Status``.

Requests go through the Python client's connection pool (its CA and token) but are built by hand, so each test
controls the method, path, body and Content-Type exactly. Expected texts come from apimachinery
(``pkg/api/errors``, ``pkg/util/validation/field``, ``pkg/labels``) and apiserver (``pkg/server/handler.go``,
``pkg/endpoints/handlers``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .cluster import Cluster

JSON = dict[str, Any]
NOT_FOUND = "the server could not find the requested resource"
METHOD_NOT_ALLOWED = "the server does not allow this method on the requested resource"


@pytest.fixture
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    with cluster.api_client() as api_client:
        yield api_client


def request(api: client.ApiClient, method: str, path: str, body: Any = None,
            content_type: str | None = "application/json") -> tuple[int, JSON]:
    cfg = api.configuration
    headers = {"Accept": "application/json"}
    token = cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
    if token:
        headers["Authorization"] = token
    if content_type:
        headers["Content-Type"] = content_type
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    resp = api.rest_client.pool_manager.request(method, cfg.host + path, body=data, headers=headers,
                                                preload_content=True, timeout=10)
    return resp.status, json.loads(resp.data)


def _status(body: JSON) -> JSON:
    assert body["kind"] == "Status" and body["apiVersion"] == "v1", body
    assert body["status"] == "Failure"
    return body


def _configmap(api: client.ApiClient, namespace: str, name: str = "x") -> client.V1ConfigMap:
    return client.CoreV1Api(api).create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name), data={"a": "1"}))


# -- 404 ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/api/v1/namespaces/{ns}/widgets",
    "/api/v1/namespaces/{ns}/widgets/w",
    "/apis/nope.example.com/v1/widgets",
    "/apis/apps/v9/namespaces/{ns}/deployments",
    "/api/v1/namespaces/{ns}/configmaps/x/bogus",
    "/nothing/here",
])
def test_unknown_paths_are_404(api: client.ApiClient, namespace: str, path: str) -> None:
    code, body = request(api, "GET", path.format(ns=namespace))
    assert code == 404
    assert _status(body)["reason"] == "NotFound"
    assert body["message"] == NOT_FOUND
    assert body["code"] == 404


def test_missing_object_is_404_with_details(api: client.ApiClient, namespace: str) -> None:
    code, body = request(api, "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/nope")
    assert code == 404
    assert _status(body)["message"] == 'deployments.apps "nope" not found'
    assert body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


def test_kubectl_unknown_resource_type(cluster: Cluster) -> None:
    result = cluster.kubectl("get", "widgets", check=False)
    assert result.returncode != 0
    assert 'the server doesn\'t have a resource type "widgets"' in result.stderr


# -- 405 ----------------------------------------------------------------------------------------------------
def test_post_to_an_object_is_405(api: client.ApiClient, namespace: str) -> None:
    _configmap(api, namespace)
    code, body = request(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps/x",
                         {"metadata": {"name": "x"}})
    assert code == 405
    assert _status(body)["reason"] == "MethodNotAllowed"


def test_put_to_a_collection_is_405(api: client.ApiClient, namespace: str) -> None:
    code, body = request(api, "PUT", f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "x"}})
    assert code == 405
    assert _status(body)["reason"] == "MethodNotAllowed"


def test_unsupported_verb_is_405(api: client.ApiClient) -> None:
    # Namespaces have no deletecollection: kube registers no route, go-restful answers 405.
    code, body = request(api, "DELETE", "/api/v1/namespaces")
    assert code == 405
    assert _status(body)["reason"] == "MethodNotAllowed"


def test_405_message_is_kubes(api: client.ApiClient, namespace: str) -> None:
    _configmap(api, namespace)
    for method, path in (("POST", f"/api/v1/namespaces/{namespace}/configmaps/x"),
                         ("PUT", f"/api/v1/namespaces/{namespace}/configmaps"),
                         ("DELETE", "/api/v1/namespaces")):
        _, body = request(api, method, path, {"metadata": {"name": "x"}} if method != "DELETE" else None)
        assert body["message"] == METHOD_NOT_ALLOWED, (method, path, body)


# -- 409 ----------------------------------------------------------------------------------------------------
def test_stale_update_is_409_conflict(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    first = _configmap(api, namespace)
    first.data = {"a": "2"}
    core.replace_namespaced_config_map("x", namespace, first)
    first.data = {"a": "3"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("x", namespace, first)
    assert err.value.status == 409
    body = _status(json.loads(err.value.body or "{}"))
    assert body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on configmaps "x": the object has been modified; '
                               "please apply your changes to the latest version and try again")
    assert body["details"] == {"name": "x", "kind": "configmaps"}
    assert core.read_namespaced_config_map("x", namespace).data == {"a": "2"}


def test_create_existing_is_409_already_exists(api: client.ApiClient, namespace: str) -> None:
    _configmap(api, namespace)
    code, body = request(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "x"}})
    assert code == 409
    assert _status(body)["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "x" already exists'
    assert body["details"] == {"name": "x", "kind": "configmaps"}


def test_stale_precondition_on_delete_is_409(api: client.ApiClient, namespace: str) -> None:
    made = _configmap(api, namespace)
    code, body = request(api, "DELETE", f"/api/v1/namespaces/{namespace}/configmaps/x",
                         {"preconditions": {"resourceVersion": "1"}})
    assert code == 409
    assert _status(body)["reason"] == "Conflict"
    # kube checks DeleteOptions.preconditions in rest.BeforeDelete, naming the Kind (not the resource).
    assert body["message"] == ('Operation cannot be fulfilled on ConfigMap "x": the ResourceVersion in the '
                               f"precondition (1) does not match the ResourceVersion in record "
                               f"({made.metadata and made.metadata.resource_version}). The object might have "
                               "been modified")
    assert body["details"] == {"name": "x", "kind": "ConfigMap"}


# -- 422 ----------------------------------------------------------------------------------------------------
def _deployment(name: str, *, selector: str, template: str, replicas: int = 1) -> JSON:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": selector}},
                     "template": {"metadata": {"labels": {"app": template}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def test_selector_not_matching_template_is_422(api: client.ApiClient, namespace: str) -> None:
    code, body = request(api, "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments",
                         _deployment("d", selector="a", template="b"))
    assert code == 422
    assert _status(body)["reason"] == "Invalid"
    assert body["message"] == ('Deployment.apps "d" is invalid: spec.template.metadata.labels: Invalid value: '
                               '{"app":"b"}: `selector` does not match template `labels`')
    assert body["details"] == {
        "name": "d", "group": "apps", "kind": "Deployment",
        "causes": [{"reason": "FieldValueInvalid",
                    "message": 'Invalid value: {"app":"b"}: `selector` does not match template `labels`',
                    "field": "spec.template.metadata.labels"}]}


def test_negative_replicas_is_422(api: client.ApiClient, namespace: str) -> None:
    with pytest.raises(ApiException) as err:
        body = _deployment("d", selector="a", template="a", replicas=-1)
        client.AppsV1Api(api).create_namespaced_deployment(namespace, body)  # type: ignore[arg-type]
    assert err.value.status == 422
    body = _status(json.loads(err.value.body or "{}"))
    assert body["message"] == ('Deployment.apps "d" is invalid: spec.replicas: Invalid value: -1: must be greater '
                               "than or equal to 0")
    assert body["details"]["causes"] == [{"reason": "FieldValueInvalid",
                                          "message": "Invalid value: -1: must be greater than or equal to 0",
                                          "field": "spec.replicas"}]


def test_several_field_errors_are_listed_in_brackets(api: client.ApiClient, namespace: str) -> None:
    code, body = request(api, "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments",
                         _deployment("d", selector="a", template="b", replicas=-1))
    assert code == 422
    assert body["message"] == (
        'Deployment.apps "d" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, '
        'spec.template.metadata.labels: Invalid value: {"app":"b"}: `selector` does not match template `labels`]')
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.replicas", "spec.template.metadata.labels"]


def test_missing_required_field_is_422(api: client.ApiClient, namespace: str) -> None:
    code, body = request(api, "POST", f"/api/v1/namespaces/{namespace}/pods",
                         {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}})
    assert code == 422
    assert body["message"] == 'Pod "p" is invalid: spec.containers[0].image: Required value'
    assert body["details"]["causes"] == [{"reason": "FieldValueRequired", "message": "Required value",
                                          "field": "spec.containers[0].image"}]


def test_kubectl_prints_invalid(cluster: Cluster, namespace: str) -> None:
    manifest = json.dumps(_deployment("d", selector="a", template="a", replicas=-1))
    result = cluster.kubectl("-n", namespace, "create", "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert ('The Deployment "d" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'
            in result.stderr)


# -- 400 ----------------------------------------------------------------------------------------------------
def test_bad_label_selector_is_400(api: client.ApiClient, namespace: str) -> None:
    code, body = request(api, "GET", f"/api/v1/namespaces/{namespace}/configmaps?labelSelector=a%20in%20(")
    assert code == 400
    assert _status(body)["reason"] == "BadRequest"
    assert body["message"] == "unable to parse requirement: found '', expected: ',', ')' or identifier"


def test_kubectl_bad_label_selector(cluster: Cluster, namespace: str) -> None:
    result = cluster.kubectl("-n", namespace, "get", "cm", "-l", "a in (", check=False)
    assert result.returncode != 0
    assert "Error from server (BadRequest)" in result.stderr
    assert "unable to parse requirement: found '', expected: ',', ')' or identifier" in result.stderr


def test_namespace_mismatch_is_400(api: client.ApiClient, namespace: str) -> None:
    code, body = request(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps",
                         {"metadata": {"name": "x", "namespace": "elsewhere"}})
    assert code == 400
    assert _status(body)["reason"] == "BadRequest"
    assert body["message"] == "the namespace of the provided object does not match the namespace sent on the request"


def test_undecodable_body_is_400(api: client.ApiClient, namespace: str) -> None:
    code, body = request(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps", b"{not json")
    assert code == 400
    assert _status(body)["reason"] == "BadRequest"


# -- 415 ----------------------------------------------------------------------------------------------------
def test_unknown_patch_type_is_415(api: client.ApiClient, namespace: str) -> None:
    _configmap(api, namespace)
    code, body = request(api, "PATCH", f"/api/v1/namespaces/{namespace}/configmaps/x", {"data": {"a": "2"}},
                         content_type="application/xml")
    assert code == 415
    assert _status(body)["reason"] == "UnsupportedMediaType"
    assert body["message"].startswith("the body of the request was in an unknown format - accepted media types "
                                      "include: ")
    accepted = set(body["message"].split("include: ", 1)[1].split(", "))
    assert accepted >= {"application/json-patch+json", "application/merge-patch+json",
                        "application/strategic-merge-patch+json", "application/apply-patch+yaml"}


def test_failed_json_patch_test_op_is_422(api: client.ApiClient, namespace: str) -> None:
    _configmap(api, namespace)
    code, body = request(api, "PATCH", f"/api/v1/namespaces/{namespace}/configmaps/x",
                         [{"op": "test", "path": "/data/a", "value": "nope"}],
                         content_type="application/json-patch+json")
    assert code == 422
    assert _status(body)["reason"] == "Invalid"


# -- more 400/404/422 shapes --------------------------------------------------------------------------------
def test_missing_name_is_422(api: client.ApiClient, namespace: str) -> None:
    code, body = request(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps", {"data": {"a": "b"}})
    assert code == 422
    assert body["message"] == ('ConfigMap "" is invalid: metadata.name: Required value: name or generateName is '
                               "required")
    assert body["details"]["causes"] == [{"reason": "FieldValueRequired",
                                          "message": "Required value: name or generateName is required",
                                          "field": "metadata.name"}]


def test_name_in_body_must_match_the_url(api: client.ApiClient, namespace: str) -> None:
    _configmap(api, namespace)
    code, body = request(api, "PUT", f"/api/v1/namespaces/{namespace}/configmaps/x", {"metadata": {"name": "y"}})
    assert code == 400
    assert _status(body)["reason"] == "BadRequest"
    assert body["message"] == "the name of the object (y) does not match the name on the URL (x)"


def test_put_with_another_uid_is_409(api: client.ApiClient, namespace: str) -> None:
    """An update carrying a uid must find that very object: kube derives a uid precondition from the body, so a
    read-modify-write across a delete and re-create cannot overwrite the new object."""
    made = _configmap(api, namespace)
    assert made.metadata is not None
    code, body = request(api, "PUT", f"/api/v1/namespaces/{namespace}/configmaps/x",
                         {"metadata": {"name": "x", "uid": "00000000-0000-0000-0000-000000000009"},
                          "data": {"a": "overwritten"}})
    assert code == 409, body
    assert body["reason"] == "Conflict"
    assert body["message"].startswith('Operation cannot be fulfilled on configmaps "x": ')
    assert body["message"].endswith("Precondition failed: UID in precondition: 00000000-0000-0000-0000-000000000009, "
                                    f"UID in object meta: {made.metadata.uid}")
    assert client.CoreV1Api(api).read_namespaced_config_map("x", namespace).data == {"a": "1"}


def test_patch_changing_uid_is_422(api: client.ApiClient, namespace: str) -> None:
    _configmap(api, namespace)
    code, body = request(api, "PATCH", f"/api/v1/namespaces/{namespace}/configmaps/x",
                         {"metadata": {"uid": "00000000-0000-0000-0000-000000000009"}, "data": {"a": "2"}},
                         content_type="application/merge-patch+json")
    assert code == 422, body
    assert body["message"] == ('ConfigMap "x" is invalid: metadata.uid: Invalid value: '
                               '"00000000-0000-0000-0000-000000000009": field is immutable')


def test_stale_uid_precondition_on_delete_is_409(api: client.ApiClient, namespace: str) -> None:
    made = _configmap(api, namespace)
    code, body = request(api, "DELETE", f"/api/v1/namespaces/{namespace}/configmaps/x",
                         {"preconditions": {"uid": "00000000-0000-0000-0000-000000000009"}})
    assert code == 409
    assert body["message"] == ('Operation cannot be fulfilled on ConfigMap "x": the UID in the precondition '
                               "(00000000-0000-0000-0000-000000000009) does not match the UID in record "
                               f"({made.metadata and made.metadata.uid}). The object might have been deleted "
                               "and then recreated")


def test_delete_preconditions_are_enforced(api: client.ApiClient, namespace: str) -> None:
    made = _configmap(api, namespace)
    assert made.metadata is not None
    for pre in ({"uid": "00000000-0000-0000-0000-000000000009"}, {"resourceVersion": "1"}):
        code, body = request(api, "DELETE", f"/api/v1/namespaces/{namespace}/configmaps/x", {"preconditions": pre})
        assert (code, body["reason"]) == (409, "Conflict")
    code, _ = request(api, "DELETE", f"/api/v1/namespaces/{namespace}/configmaps/x",
                      {"preconditions": {"uid": made.metadata.uid,
                                         "resourceVersion": made.metadata.resource_version}})
    assert code == 200


def test_list_in_a_missing_namespace_is_empty(api: client.ApiClient) -> None:
    code, body = request(api, "GET", "/api/v1/namespaces/no-such-namespace-here/configmaps")
    assert code == 200
    assert body["kind"] == "ConfigMapList" and body["items"] == []


def test_patch_of_a_missing_object_is_404(api: client.ApiClient, namespace: str) -> None:
    code, body = request(api, "PATCH", f"/api/v1/namespaces/{namespace}/configmaps/none", {"data": {"a": "b"}},
                         content_type="application/merge-patch+json")
    assert code == 404
    assert body["message"] == 'configmaps "none" not found'


def test_overlong_name_is_422(api: client.ApiClient, namespace: str) -> None:
    name = "a" * 254
    code, body = request(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": name}})
    assert code == 422
    assert body["message"] == (f'ConfigMap "{name}" is invalid: metadata.name: Invalid value: "{name}": must be '
                               "no more than 253 characters")


def test_bad_field_selector_on_watch_is_400(api: client.ApiClient, namespace: str) -> None:
    code, body = request(api, "GET",
                         f"/api/v1/namespaces/{namespace}/configmaps?watch=true&fieldSelector=spec.nope%3D1")
    assert code == 400
    assert _status(body)["reason"] == "BadRequest"
    assert body["message"] == '"spec.nope" is not a known field selector: only "metadata.name", "metadata.namespace"'


def test_send_initial_events_on_a_list_is_422(api: client.ApiClient, namespace: str) -> None:
    code, body = request(api, "GET", f"/api/v1/namespaces/{namespace}/configmaps?sendInitialEvents=true")
    assert code == 422
    assert _status(body)["reason"] == "Invalid"
    assert body["message"] == ('ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: '
                               "sendInitialEvents is forbidden for list")
