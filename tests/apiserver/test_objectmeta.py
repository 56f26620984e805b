"""The metadata rules every write shares: identity against the URL, server-set fields, no-op writes."""

from __future__ import annotations

from typing import Any

import pytest

from nanokube.api.errors import BadRequest
from nanokube.api.registry import Registry, Resource
from nanokube.apiserver import objectmeta

JSON = dict[str, Any]
REGISTRY = Registry()


def _resource(group: str, version: str, plural: str) -> Resource:
    resource = REGISTRY.get(group, version, plural)
    assert resource is not None
    return resource


def test_identity_fills_in_the_url_and_refuses_another() -> None:
    deployments = _resource("apps", "v1", "deployments")
    obj: JSON = {}
    meta = objectmeta.check_identity(deployments, "ns", obj)
    assert obj == {"metadata": {"namespace": "ns"}, "apiVersion": "apps/v1", "kind": "Deployment"}
    assert meta is obj["metadata"]
    for body, wording in [({"apiVersion": "apps/v2"}, "API version"), ({"kind": "StatefulSet"}, "the kind"),
                          ({"metadata": {"namespace": "other"}}, "namespace"), ({"metadata": []}, "metadata")]:
        with pytest.raises(BadRequest, match=wording):
            objectmeta.check_identity(deployments, "ns", body)
    nodes = _resource("", "v1", "nodes")
    cluster_scoped: JSON = {"metadata": {"namespace": "ns"}}
    objectmeta.check_identity(nodes, "", cluster_scoped)
    assert "namespace" not in cluster_scoped["metadata"]


def test_name_must_be_the_urls() -> None:
    obj: JSON = {}
    objectmeta.check_name("a", obj)
    assert obj["metadata"]["name"] == "a"
    with pytest.raises(BadRequest, match=r"the name of the object \(b\) does not match the name on the URL \(a\)"):
        objectmeta.check_name("a", {"metadata": {"name": "b"}})


def test_an_update_keeps_what_only_the_server_sets() -> None:
    live = {"metadata": {"uid": "u", "creationTimestamp": "t0", "generation": 3, "resourceVersion": "9",
                         "managedFields": [{"manager": "m"}], "generateName": "x-"}}
    desired = {"metadata": {"uid": "forged", "generation": 99, "deletionTimestamp": "t1", "selfLink": "/x",
                            "managedFields": [{"manager": "forged"}], "resourceVersion": "1"}}
    objectmeta.keep_system_fields(desired, live)
    assert desired["metadata"] == {"uid": "u", "creationTimestamp": "t0", "generation": 3, "resourceVersion": "9",
                                   "managedFields": [{"manager": "m"}], "generateName": "x-"}
    bare: JSON = {"metadata": {"managedFields": [{"manager": "forged"}]}}
    objectmeta.keep_system_fields(bare, {"metadata": {}})
    assert bare["metadata"] == {"resourceVersion": None}


def test_a_write_that_changes_nothing_is_spotted() -> None:
    live = {"metadata": {"name": "a", "resourceVersion": "1", "managedFields": [{"time": "t0"}]}, "data": {"k": "v"}}
    same = {"metadata": {"name": "a", "resourceVersion": "2", "managedFields": [{"time": "t1"}]}, "data": {"k": "v"}}
    assert objectmeta.unchanged(same, live)
    assert not objectmeta.unchanged(same, live, managed_fields=True)  # the client wrote managedFields itself
    assert not objectmeta.unchanged({**same, "data": {"k": "w"}}, live)
    assert not objectmeta.unchanged({**same, "metadata": {"name": "a", "labels": {"x": "y"}}}, live)
