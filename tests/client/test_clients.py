"""The in-process and the HTTP client keep one contract: same results, same errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from nanokube.api.errors import AlreadyExists, Conflict, Expired, Invalid, NotFound
from nanokube.client.http import HttpClient
from nanokube.cmd.inprocess import InProcessCluster


@pytest.fixture(params=["local", "http"])
async def both(request: pytest.FixtureRequest) -> AsyncIterator[tuple[InProcessCluster, Any]]:
    async with InProcessCluster(serve=True, window=50) as cluster:
        if request.param == "local":
            yield cluster, cluster.client
        else:
            http = HttpClient(cluster.url)
            try:
                yield cluster, http
            finally:
                await http.close()


async def test_crud_and_errors(both: tuple[InProcessCluster, Any]) -> None:
    cluster, client = both
    cms = cluster.resource("", "v1", "configmaps")
    created = await client.create(cms, "default", {"metadata": {"name": "a"}, "data": {"k": "1"}})
    with pytest.raises(AlreadyExists):
        await client.create(cms, "default", {"metadata": {"name": "a"}})
    got = await client.get(cms, "default", "a")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    merged = await client.patch(cms, "default", "a", {"data": {"k": "2"}})
    assert merged["data"] == {"k": "2"}
    jsonp = await client.patch(cms, "default", "a", [{"op": "add", "path": "/data/j", "value": "3"}], patch_type="json")
    assert jsonp["data"] == {"k": "2", "j": "3"}
    with pytest.raises(Conflict):
        await client.update(cms, "default", created)  # stale resourceVersion
    listed = await client.list(cms, "default", field_selector="metadata.name=a")
    assert [o["metadata"]["name"] for o in listed.items] == ["a"]
    with pytest.raises(Invalid):
        await client.create(cms, "default", {"metadata": {"name": "Not_Valid"}})
    await client.delete(cms, "default", "a")
    with pytest.raises(NotFound):
        await client.get(cms, "default", "a")


async def test_watch_and_expiry(both: tuple[InProcessCluster, Any]) -> None:
    cluster, client = both
    cms = cluster.resource("", "v1", "configmaps")
    start = (await client.list(cms, "default")).resource_version
    seen: list[tuple[str, str]] = []

    async def consume() -> None:
        async for event in client.watch(cms, "default", resource_version=start):
            seen.append((event.type, event.object["metadata"]["name"]))
            if len(seen) == 3:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    await client.create(cms, "default", {"metadata": {"name": "w"}})
    await client.patch(cms, "default", "w", {"data": {"x": "y"}})
    await client.delete(cms, "default", "w")
    await asyncio.wait_for(task, 10)
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    for i in range(60):  # push the start revision out of the 50-event window
        await client.create(cms, "default", {"metadata": {"name": f"f{i}"}})
    with pytest.raises(Expired):
        async for _ in client.watch(cms, "default", resource_version=start):
            pass


async def test_bind_and_evict(both: tuple[InProcessCluster, Any]) -> None:
    cluster, client = both
    pods = cluster.resource("", "v1", "pods")
    await client.create(pods, "default", {"metadata": {"name": "p"},
                                          "spec": {"containers": [{"name": "c", "image": "x"}]}})
    await client.bind("default", "p", "n1")
    assert (await client.get(pods, "default", "p"))["spec"]["nodeName"] == "n1"
    with pytest.raises(Conflict):
        await client.bind("default", "p", "n2")
    await client.evict("default", "p", grace_period_seconds=0)
    with pytest.raises(NotFound):
        await client.get(pods, "default", "p")
