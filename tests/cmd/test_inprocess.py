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
