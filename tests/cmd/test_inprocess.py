from __future__ import annotations

from nanokube.cmd.inprocess import InProcessCluster


async def test_in_process_cluster_is_seeded_and_serves_writes() -> None:
    async with InProcessCluster() as cluster:
        namespaces = cluster.resource("", "v1", "namespaces")
        listed = await cluster.client.list(namespaces)
        assert {n["metadata"]["name"] for n in listed.items} >= {"default", "kube-system"}
        cms = cluster.resource("", "v1", "configmaps")
        created = await cluster.client.create(cms, "default", {"metadata": {"name": "x"}, "data": {"a": "1"}})
        patched = await cluster.client.patch(cms, "default", "x", {"data": {"a": "2"}})
        assert patched["data"] == {"a": "2"}
        assert int(patched["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


async def test_bind_and_evict_through_the_client() -> None:
    import pytest

    from nanokube.api.errors import Conflict, NotFound

    async with InProcessCluster() as cluster:
        pods = cluster.resource("", "v1", "pods")
        body = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        await cluster.client.create(pods, "default", body)
        await cluster.client.bind("default", "p", "node-a")
        bound = await cluster.client.get(pods, "default", "p")
        assert bound["spec"]["nodeName"] == "node-a"
        assert {"type": "PodScheduled", "status": "True"}.items() <= bound["status"]["conditions"][0].items()
        with pytest.raises(Conflict, match='already assigned to node "node-a"'):
            await cluster.client.bind("default", "p", "node-b")
        await cluster.client.evict("default", "p", grace_period_seconds=0)
        with pytest.raises(NotFound):
            await cluster.client.get(pods, "default", "p")
