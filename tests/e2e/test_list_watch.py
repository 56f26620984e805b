"""List and watch consistency as clients rely on it: a paginated list is one snapshot (every page carries the
first page's resourceVersion), and a watch from that resourceVersion delivers every change made after it, so
list-then-watch never misses an event, however the list was paged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client, watch

from .cluster import Cluster


@pytest.fixture
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    with cluster.api_client() as api_client:
        yield api_client


def _make(core: client.CoreV1Api, namespace: str, *names: str) -> None:
    for name in names:
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name), data={"v": "0"}))


def _page(core: client.CoreV1Api, namespace: str, token: str | None) -> client.V1ConfigMapList:
    if token:
        return core.list_namespaced_config_map(namespace, limit=1, _continue=token)
    return core.list_namespaced_config_map(namespace, limit=1)


def test_every_page_of_a_list_carries_the_first_pages_resource_version(api: client.ApiClient,
                                                                        namespace: str) -> None:
    core = client.CoreV1Api(api)
    _make(core, namespace, "a", "b", "c")
    first = _page(core, namespace, None)
    assert first.metadata is not None and first.metadata.var_continue
    core.patch_namespaced_config_map("a", namespace, {"data": {"v": "1"}})  # a change after the snapshot
    second = _page(core, namespace, first.metadata.var_continue)
    assert second.metadata is not None
    assert second.metadata.resource_version == first.metadata.resource_version


def test_paged_list_then_watch_misses_nothing(api: client.ApiClient, namespace: str) -> None:
    """The pattern every Python informer-like loop uses: page through the list, then watch from the list's
    resourceVersion (kube: the first page's, which every page repeats). A change to an item already listed,
    made while paging, must arrive on the watch."""
    core = client.CoreV1Api(api)
    _make(core, namespace, "a", "b", "c")
    token: str | None = None
    pages = []
    while True:
        page = _page(core, namespace, token)
        pages.append(page)
        if len(pages) == 1:
            core.patch_namespaced_config_map("a", namespace, {"data": {"v": "1"}})
        assert page.metadata is not None
        token = page.metadata.var_continue
        if not token:
            break
    last = pages[-1].metadata
    assert last is not None
    seen: list[tuple[str, str]] = []
    for event in watch.Watch().stream(core.list_namespaced_config_map, namespace,
                                      resource_version=last.resource_version, timeout_seconds=2):
        obj = event["object"]
        seen.append((event["type"], f"{obj.metadata.name}={obj.data['v']}"))
    listed = {str(item.metadata and item.metadata.name): (item.data or {}).get("v") for page in pages
              for item in page.items}
    # Either the list already showed a=1 (then no event is owed), or the watch must deliver it.
    assert listed["a"] == "1" or ("MODIFIED", "a=1") in seen, (listed, seen)
