"""ObjectStorage semantics over the memory store: what every kind shares, checked without HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from nanokube.api.errors import AlreadyExists, BadRequest, Conflict, Forbidden, Invalid, NotFound
from nanokube.api.registry import Registry
from nanokube.apiserver.storage import DeleteOptions, ListOptions, ObjectStorage
from nanokube.store.memory import MemoryStore

JSON = dict[str, Any]


@pytest.fixture
async def storage() -> ObjectStorage:
    store = MemoryStore()
    await store.start()
    s = ObjectStorage(store, Registry())
    ns = s.registry.get("", "v1", "namespaces")
    assert ns is not None
    await s.create(ns, "", {"metadata": {"name": "default"}})
    return s


def res(s: ObjectStorage, group: str, plural: str) -> Any:
    r = s.registry.get(group, "v1", plural)
    assert r is not None
    return r


def deployment(name: str = "web", replicas: int = 1) -> JSON:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
            "status": {"replicas": 99}}


def replace_with(obj: JSON) -> Any:
    return lambda live: obj


async def test_create_sets_system_fields_and_wipes_status(storage: ObjectStorage) -> None:
    deploys = res(storage, "apps", "deployments")
    body = deployment()
    body["metadata"]["uid"] = "client-chosen"
    created = await storage.create(deploys, "default", body)
    meta = created["metadata"]
    assert meta["uid"] != "client-chosen" and len(meta["uid"]) == 36
    assert meta["generation"] == 1 and meta["namespace"] == "default"
    assert meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) == storage.store.revision
    assert (created.get("status") or {}).get("replicas", 0) == 0  # the client's status was wiped
    assert body["metadata"]["uid"] == "client-chosen"  # the caller's dict is untouched


async def test_create_errors(storage: ObjectStorage) -> None:
    cms = res(storage, "", "configmaps")
    await storage.create(cms, "default", {"metadata": {"name": "a"}})
    with pytest.raises(AlreadyExists, match='configmaps "a" already exists'):
        await storage.create(cms, "default", {"metadata": {"name": "a"}})
    with pytest.raises(NotFound, match='namespaces "nope" not found'):
        await storage.create(cms, "nope", {"metadata": {"name": "a"}})
    with pytest.raises(BadRequest, match="does not match the namespace"):
        await storage.create(cms, "default", {"metadata": {"name": "b", "namespace": "other"}})
    with pytest.raises(BadRequest, match=r"the API version in the data \(apps/v1\)"):
        await storage.create(cms, "default", {"apiVersion": "apps/v1", "metadata": {"name": "c"}})
    with pytest.raises(Invalid):
        await storage.create(cms, "default", {"metadata": {}})


async def test_generate_name(storage: ObjectStorage) -> None:
    cms = res(storage, "", "configmaps")
    created = await storage.create(cms, "default", {"metadata": {"generateName": "x-"}})
    assert created["metadata"]["name"].startswith("x-") and len(created["metadata"]["name"]) == 7


async def test_dry_run_stores_nothing(storage: ObjectStorage) -> None:
    cms = res(storage, "", "configmaps")
    before = storage.store.revision
    await storage.create(cms, "default", {"metadata": {"name": "dry"}}, dry_run=True)
    assert storage.store.revision == before
    with pytest.raises(NotFound):
        await storage.get(cms, "default", "dry")


async def test_update_generation_status_and_noop(storage: ObjectStorage) -> None:
    deploys = res(storage, "apps", "deployments")
    created = await storage.create(deploys, "default", deployment())
    same = await storage.update(deploys, "default", "web", replace_with(deployment()))
    assert same.obj["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    changed = await storage.update(deploys, "default", "web", replace_with(deployment(replicas=3)))
    assert changed.obj["metadata"]["generation"] == 2
    assert (changed.obj.get("status") or {}).get("replicas", 0) == 0  # main-resource writes ignore status
    status = deployment(replicas=7)
    status["status"] = {"replicas": 3, "observedGeneration": 2}
    written = await storage.update(deploys, "default", "web", replace_with(status), subresource="status")
    assert written.obj["status"]["replicas"] == 3
    assert written.obj["spec"]["replicas"] == 3  # status writes ignore spec
    assert written.obj["metadata"]["generation"] == 2


async def test_update_precondition_conflict(storage: ObjectStorage) -> None:
    cms = res(storage, "", "configmaps")
    await storage.create(cms, "default", {"metadata": {"name": "a"}})

    def stale(live: JSON | None) -> JSON:
        raise Conflict.modified("configmaps", "", "a")

    with pytest.raises(Conflict, match="the object has been modified"):
        await storage.update(cms, "default", "a", stale)


async def test_list_paging_and_selectors(storage: ObjectStorage) -> None:
    from nanokube.api.labels import parse_selector

    cms = res(storage, "", "configmaps")
    for i in range(5):
        await storage.create(cms, "default", {"metadata": {"name": f"c{i}", "labels": {"even": str(i % 2 == 0)}}})
    page = await storage.list_objects(cms, "default", ListOptions(limit=2))
    assert [o["metadata"]["name"] for o in page.items] == ["c0", "c1"]
    assert page.continue_token and page.remaining == 3
    rest = await storage.list_objects(cms, "default", ListOptions(limit=10, continue_token=page.continue_token))
    assert [o["metadata"]["name"] for o in rest.items] == ["c2", "c3", "c4"] and not rest.continue_token
    even = await storage.list_objects(cms, "default", ListOptions(label_selector=parse_selector("even=True")))
    assert [o["metadata"]["name"] for o in even.items] == ["c0", "c2", "c4"]


async def test_finalizers_hold_deletion_until_removed(storage: ObjectStorage) -> None:
    cms = res(storage, "", "configmaps")
    await storage.create(cms, "default", {"metadata": {"name": "f", "finalizers": ["example.com/x"]}})
    obj, removed = await storage.delete(cms, "default", "f", DeleteOptions())
    assert not removed and obj["metadata"]["deletionTimestamp"]

    def add_finalizer(live: JSON | None) -> JSON:
        assert live is not None
        live["metadata"]["finalizers"].append("example.com/y")
        return live

    with pytest.raises(Invalid, match="no new finalizers can be added"):
        await storage.update(cms, "default", "f", add_finalizer)

    def clear(live: JSON | None) -> JSON:
        assert live is not None
        live["metadata"]["finalizers"] = []
        return live

    await storage.update(cms, "default", "f", clear)
    with pytest.raises(NotFound):
        await storage.get(cms, "default", "f")


async def test_propagation_policies_add_finalizers(storage: ObjectStorage) -> None:
    cms = res(storage, "", "configmaps")
    for name, policy, finalizer in (("fg", "Foreground", "foregroundDeletion"), ("or", "Orphan", "orphan")):
        await storage.create(cms, "default", {"metadata": {"name": name}})
        obj, removed = await storage.delete(cms, "default", name, DeleteOptions(propagation_policy=policy))
        assert not removed and obj["metadata"]["finalizers"] == [finalizer]


async def test_delete_preconditions(storage: ObjectStorage) -> None:
    cms = res(storage, "", "configmaps")
    await storage.create(cms, "default", {"metadata": {"name": "p"}})
    with pytest.raises(Conflict, match=r"the UID in the precondition \(wrong\) does not match"):
        await storage.delete(cms, "default", "p", DeleteOptions(precondition_uid="wrong"))


async def test_graceful_pod_deletion(storage: ObjectStorage) -> None:
    pods = res(storage, "", "pods")
    body = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}}
    await storage.create(pods, "default", body)
    obj, removed = await storage.delete(pods, "default", "p", DeleteOptions())
    assert not removed and obj["metadata"]["deletionGracePeriodSeconds"] == 30
    obj, removed = await storage.delete(pods, "default", "p", DeleteOptions(grace_period_seconds=0))
    assert removed
    # An unscheduled pod goes at once.
    await storage.create(pods, "default", {"metadata": {"name": "q"}, "spec": body["spec"] | {"nodeName": None}})
    _, removed = await storage.delete(pods, "default", "q", DeleteOptions())
    assert removed


async def test_namespace_termination_blocks_creates(storage: ObjectStorage) -> None:
    ns = res(storage, "", "namespaces")
    cms = res(storage, "", "configmaps")
    await storage.create(ns, "", {"metadata": {"name": "gone"}})
    obj, removed = await storage.delete(ns, "", "gone", DeleteOptions())
    assert not removed and obj["status"]["phase"] == "Terminating"
    with pytest.raises(Forbidden, match="because it is being terminated"):
        await storage.create(cms, "gone", {"metadata": {"name": "late"}})


async def test_pod_toleration_seconds_are_a_cluster_setting() -> None:
    from nanokube.apiserver.strategies import StrategyOptions

    store = MemoryStore()
    await store.start()
    s = ObjectStorage(store, Registry(), StrategyOptions(pod_toleration_seconds=5))
    await s.create(res(s, "", "namespaces"), "", {"metadata": {"name": "default"}})
    pod = await s.create(res(s, "", "pods"), "default",
                         {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}})
    seconds = {t["key"]: t["tolerationSeconds"] for t in pod["spec"]["tolerations"]}
    assert seconds == {"node.kubernetes.io/not-ready": 5, "node.kubernetes.io/unreachable": 5}


async def test_daemonset_template_generation_counts_template_changes(storage: ObjectStorage) -> None:
    daemonsets = res(storage, "apps", "daemonsets")
    body = deployment("ds")
    del body["spec"]["replicas"]
    body["kind"] = "DaemonSet"
    created = await storage.create(daemonsets, "default", body)
    assert created["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    updated = await storage.update(daemonsets, "default", "ds", replace_with(body))
    assert updated.obj["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"
    body["spec"]["minReadySeconds"] = 5
    again = await storage.update(daemonsets, "default", "ds", replace_with(body))
    assert again.obj["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"


async def test_priority_class_admission(storage: ObjectStorage) -> None:
    from nanokube.apiserver.priority import PriorityAdmission

    storage.admitters.append(PriorityAdmission(storage).admit)
    pods = res(storage, "", "pods")
    classes = storage.registry.get("scheduling.k8s.io", "v1", "priorityclasses")
    await storage.create(classes, "", {"metadata": {"name": "high"}, "value": 1000,
                                       "preemptionPolicy": "Never"})
    spec = {"containers": [{"name": "c", "image": "x"}]}
    pod = await storage.create(pods, "default", {"metadata": {"name": "a"},
                                                 "spec": {**spec, "priorityClassName": "high"}})
    assert pod["spec"]["priority"] == 1000 and pod["spec"]["preemptionPolicy"] == "Never"
    with pytest.raises(Forbidden, match='pods "b" is forbidden: no PriorityClass with name nope was found'):
        await storage.create(pods, "default", {"metadata": {"name": "b"},
                                               "spec": {**spec, "priorityClassName": "nope"}})
    await storage.create(classes, "", {"metadata": {"name": "dflt"}, "value": 7, "globalDefault": True})
    pod = await storage.create(pods, "default", {"metadata": {"name": "c"}, "spec": spec})
    assert pod["spec"]["priority"] == 7 and pod["spec"]["priorityClassName"] == "dflt"
