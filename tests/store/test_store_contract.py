"""The Store contract (interface.py) checked against every in-process backend: CRUD, conflicts, paging."""

from __future__ import annotations

import asyncio
import copy

import pytest
from store_helpers import pod, pod_key

from nanokube.store.interface import KeyExists, KeyNotFound, RevisionMismatch, StoreError
from nanokube.store.memory import MemoryStore


async def test_empty_store(store: MemoryStore) -> None:
    assert store.revision == 0
    assert await store.get(pod_key("a")) is None
    assert await store.count("/") == 0
    page = await store.list("/")
    assert (page.items, page.revision, page.more, page.remaining) == ([], 0, False, 0)


async def test_create_stamps_revision_without_touching_caller_value(store: MemoryStore) -> None:
    value = pod("a")
    original = copy.deepcopy(value)
    kv = await store.create(pod_key("a"), value)
    assert value == original  # the caller's dict is not mutated
    assert kv.key == pod_key("a")
    assert kv.mod_revision == kv.create_revision == store.revision == 1
    assert kv.value["metadata"]["resourceVersion"] == "1"
    assert kv.value["metadata"]["name"] == "a"
    assert kv.value["spec"] == original["spec"]
    assert await store.get(pod_key("a")) == kv


async def test_create_without_metadata_adds_it(store: MemoryStore) -> None:
    kv = await store.create("/core/configmaps/default/x", {"data": {"k": "v"}})
    assert kv.value == {"data": {"k": "v"}, "metadata": {"resourceVersion": "1"}}


async def test_create_existing_key_conflicts_and_takes_no_revision(store: MemoryStore) -> None:
    await store.create(pod_key("a"), pod("a"))
    with pytest.raises(KeyExists):
        await store.create(pod_key("a"), pod("a"))
    assert store.revision == 1
    assert (await store.create(pod_key("b"), pod("b"))).mod_revision == 2


async def test_update_keeps_create_revision(store: MemoryStore) -> None:
    created = await store.create(pod_key("a"), pod("a"))
    await store.create(pod_key("b"), pod("b"))
    updated = await store.update(pod_key("a"), pod("a", status={"phase": "Running"}))
    assert updated.mod_revision == 3
    assert updated.create_revision == created.create_revision == 1
    assert updated.value["status"] == {"phase": "Running"}
    assert updated.value["metadata"]["resourceVersion"] == "3"
    assert await store.get(pod_key("a")) == updated


async def test_update_with_expected_revision(store: MemoryStore) -> None:
    created = await store.create(pod_key("a"), pod("a"))
    first = await store.update(pod_key("a"), pod("a"), expected_revision=created.mod_revision)
    with pytest.raises(RevisionMismatch) as caught:
        await store.update(pod_key("a"), pod("a"), expected_revision=created.mod_revision)
    assert (caught.value.expected, caught.value.actual) == (created.mod_revision, first.mod_revision)
    assert store.revision == first.mod_revision


async def test_update_missing_key(store: MemoryStore) -> None:
    with pytest.raises(KeyNotFound):
        await store.update(pod_key("nope"), pod("nope"))
    assert store.revision == 0


async def test_delete_returns_last_value_at_delete_revision(store: MemoryStore) -> None:
    await store.create(pod_key("a"), pod("a"))
    last = await store.update(pod_key("a"), pod("a", status={"phase": "Running"}))
    gone = await store.delete(pod_key("a"))
    assert gone.mod_revision == 3
    assert gone.create_revision == 1
    assert gone.value["metadata"]["resourceVersion"] == "3"
    assert gone.value["status"] == last.value["status"]
    assert last.value["metadata"]["resourceVersion"] == "2"  # the stored value is not mutated
    assert await store.get(pod_key("a")) is None
    with pytest.raises(KeyNotFound):
        await store.delete(pod_key("a"))
    # The key can be created again, with a fresh create revision.
    again = await store.create(pod_key("a"), pod("a"))
    assert again.create_revision == again.mod_revision == 4


async def test_delete_with_expected_revision(store: MemoryStore) -> None:
    created = await store.create(pod_key("a"), pod("a"))
    with pytest.raises(RevisionMismatch):
        await store.delete(pod_key("a"), expected_revision=created.mod_revision + 7)
    assert await store.get(pod_key("a")) == created
    gone = await store.delete(pod_key("a"), expected_revision=created.mod_revision)
    assert gone.mod_revision == 2


async def test_revisions_are_consecutive_across_concurrent_writers(store: MemoryStore) -> None:
    async def writer(n: int) -> list[int]:
        revisions = []
        for i in range(10):
            key = pod_key(f"w{n}-{i}")
            revisions.append((await store.create(key, pod(key))).mod_revision)
            revisions.append((await store.update(key, pod(key))).mod_revision)
        return revisions

    per_writer = await asyncio.gather(*(writer(n) for n in range(8)))
    for revisions in per_writer:
        assert revisions == sorted(revisions)
    everything = sorted(r for revisions in per_writer for r in revisions)
    assert everything == list(range(1, 161))
    assert store.revision == 160


async def test_list_is_sorted_and_prefix_bounded(store: MemoryStore) -> None:
    for namespace, name in [("default", "b"), ("default", "a"), ("default2", "a"), ("kube-system", "z")]:
        await store.create(pod_key(name, namespace), pod(name, namespace))
    await store.create("/core/configmaps/default/a", {"metadata": {"name": "a"}})
    page = await store.list("/core/pods/default/")
    assert [kv.key for kv in page.items] == [pod_key("a"), pod_key("b")]
    assert page.revision == store.revision == 5
    assert not page.more and page.remaining == 0
    everything = await store.list("/core/pods/")
    assert [kv.key for kv in everything.items] == [
        pod_key("a"),
        pod_key("b"),
        pod_key("a", "default2"),
        pod_key("z", "kube-system"),
    ]
    assert await store.count("/core/pods/") == 4
    assert await store.count("/core/pods/default/") == 2
    assert await store.count("/core/") == 5
    assert await store.count("/") == 5
    assert await store.count("/apps/") == 0


async def test_list_paging(store: MemoryStore) -> None:
    names = [f"p{i:02d}" for i in range(25)]
    for name in reversed(names):
        await store.create(pod_key(name), pod(name))
    await store.create(pod_key("zz", "other"), pod("zz", "other"))

    seen: list[str] = []
    start_after = ""
    pages = 0
    while True:
        page = await store.list("/core/pods/default/", start_after=start_after, limit=10)
        pages += 1
        seen.extend(kv.value["metadata"]["name"] for kv in page.items)
        assert page.remaining == 25 - len(seen)
        assert page.more == (page.remaining > 0)
        if not page.more:
            break
        start_after = page.items[-1].key
    assert seen == names
    assert pages == 3


async def test_list_start_after_a_missing_key_and_past_the_end(store: MemoryStore) -> None:
    for name in ["a", "c", "e"]:
        await store.create(pod_key(name), pod(name))
    page = await store.list("/core/pods/default/", start_after=pod_key("b"), limit=1)
    assert [kv.key for kv in page.items] == [pod_key("c")]
    assert page.more and page.remaining == 1
    page = await store.list("/core/pods/default/", start_after=pod_key("e"))
    assert page.items == [] and not page.more and page.remaining == 0
    page = await store.list("/core/pods/default/", start_after="/core/pods/a", limit=5)
    assert [kv.key for kv in page.items] == [pod_key(n) for n in ["a", "c", "e"]]


async def test_list_reflects_deletes(store: MemoryStore) -> None:
    for name in ["a", "b", "c"]:
        await store.create(pod_key(name), pod(name))
    await store.delete(pod_key("b"))
    page = await store.list("/core/pods/default/")
    assert [kv.key for kv in page.items] == [pod_key("a"), pod_key("c")]
    assert page.revision == 4


async def test_writes_after_close_fail(store: MemoryStore) -> None:
    await store.close()
    with pytest.raises(StoreError):
        await store.create(pod_key("a"), pod("a"))
