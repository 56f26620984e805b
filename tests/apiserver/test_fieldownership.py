"""Which managedFields a write stores: apply's own, none for in-process writes, the manager's on the rest."""

from __future__ import annotations

from typing import Any

from nanokube.api.registry import Registry, Resource
from nanokube.apiserver.fieldownership import track

JSON = dict[str, Any]


def _configmaps() -> Resource:
    resource = Registry().get("", "v1", "configmaps")
    assert resource is not None
    return resource


def _cm(data: JSON, **meta: Any) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d", **meta},
            "data": data}


def test_apply_keeps_the_fields_it_computed() -> None:
    desired = _cm({"a": "1"}, managedFields=[{"manager": "old"}])
    track(_configmaps(), None, desired, [{"manager": "apply"}], "apply", True, "")
    assert desired["metadata"]["managedFields"] == [{"manager": "apply"}]


def test_in_process_writes_are_not_tracked() -> None:
    desired = _cm({"a": "1"}, managedFields=[{"manager": "kept"}])
    track(_configmaps(), _cm({}), desired, [{"manager": "sent"}], None, False, "")
    assert desired["metadata"]["managedFields"] == [{"manager": "kept"}]


def test_a_write_gives_its_manager_the_fields_it_set() -> None:
    live = _cm({"a": "1"})
    desired = _cm({"a": "1", "b": "2"})
    track(_configmaps(), live, desired, None, "kubectl-edit", False, "")
    entries = desired["metadata"]["managedFields"]
    assert [e["manager"] for e in entries] == ["kubectl-edit"]
    assert entries[0]["operation"] == "Update" and "f:b" in entries[0]["fieldsV1"]["f:data"]
