"""Watch semantics for every in-process backend: replay, live events, prefixes, overflow, compaction."""

from __future__ import annotations

import asyncio

import pytest
from store_helpers import StoreFactory, pod, pod_key

from nanokube.store.interface import Compacted, Event
from nanokube.store.memory import MemoryStore
from nanokube.store.watch import StoreWatcher

SAFETY = 5.0  # seconds; only guards against a hang, never measured


async def take(watcher: StoreWatcher, n: int) -> list[Event]:
    return [await asyncio.wait_for(anext(watcher), SAFETY) for _ in range(n)]


async def assert_idle(watcher: StoreWatcher) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(watcher), 0.05)


async def test_replay_then_live(store: MemoryStore) -> None:
    await store.create(pod_key("a"), pod("a"))
    await store.update(pod_key("a"), pod("a", status={"phase": "Running"}))
    watcher = store.watch("/core/pods/", 0)
    replayed = await take(watcher, 2)
    assert [(e.type, e.key, e.revision) for e in replayed] == [
        ("ADDED", pod_key("a"), 1),
        ("MODIFIED", pod_key("a"), 2),
    ]
    assert replayed[0].prev is None
    assert replayed[1].prev is not None and replayed[1].prev["metadata"]["resourceVersion"] == "1"
    assert replayed[1].value["metadata"]["resourceVersion"] == "2"
    await assert_idle(watcher)

    gone = await store.delete(pod_key("a"))
    [event] = await take(watcher, 1)
    assert (event.type, event.revision) == ("DELETED", 3)
    assert event.value == gone.value
    assert event.value["metadata"]["resourceVersion"] == "3"
    assert event.value["status"] == {"phase": "Running"}
    assert event.prev is not None and event.prev["metadata"]["resourceVersion"] == "2"
    watcher.close()


async def test_watch_from_current_revision_sees_only_new_changes(store: MemoryStore) -> None:
    await store.create(pod_key("a"), pod("a"))
    watcher = store.watch("/core/pods/", store.revision)
    await assert_idle(watcher)
    await store.create(pod_key("b"), pod("b"))
    [event] = await take(watcher, 1)
    assert (event.key, event.revision) == (pod_key("b"), 2)


async def test_watch_from_the_middle_of_history(store: MemoryStore) -> None:
    for i in range(6):
        await store.create(pod_key(f"p{i}"), pod(f"p{i}"))
    watcher = store.watch("/core/pods/", 3)
    assert [e.revision for e in await take(watcher, 3)] == [4, 5, 6]
    await assert_idle(watcher)


async def test_prefix_filtering(store: MemoryStore) -> None:
    default = store.watch("/core/pods/default/", 0)
    everything = store.watch("/", 0)
    await store.create(pod_key("a", "default2"), pod("a", "default2"))
    await store.create(pod_key("a"), pod("a"))
    await store.create("/core/configmaps/default/a", {"metadata": {"name": "a"}})
    await store.create(pod_key("b"), pod("b"))
    assert [e.key for e in await take(default, 2)] == [pod_key("a"), pod_key("b")]
    await assert_idle(default)
    got = await take(everything, 4)
    assert [e.revision for e in got] == [1, 2, 3, 4]
    # Replay honours the prefix too.
    late = store.watch("/core/pods/default2/", 0)
    assert [e.key for e in await take(late, 1)] == [pod_key("a", "default2")]
    await assert_idle(late)


async def test_events_are_shared_between_watchers(store: MemoryStore) -> None:
    first = store.watch("/core/pods/", 0)
    second = store.watch("/core/", 0)
    await store.create(pod_key("a"), pod("a"))
    [a] = await take(first, 1)
    [b] = await take(second, 1)
    assert a is b


async def test_ordered_without_gaps_under_concurrent_writers(store: MemoryStore) -> None:
    watcher = store.watch("/", store.revision)

    async def writer(n: int) -> None:
        for i in range(20):
            key = pod_key(f"w{n}-{i}")
            await store.create(key, pod(key))
            await store.update(key, pod(key))
            if i % 3 == 0:
                await store.delete(key)

    await asyncio.gather(*(writer(n) for n in range(6)))
    events = await take(watcher, store.revision)
    assert [e.revision for e in events] == list(range(1, store.revision + 1))
    await assert_idle(watcher)


async def test_overflowing_watcher_gets_compacted_not_silence(make_store: StoreFactory) -> None:
    store = await make_store(watcher_buffer=5)
    slow = store.watch("/", 0)
    fast = store.watch("/", 0)
    for i in range(5):
        await store.create(pod_key(f"p{i}"), pod(f"p{i}"))
    assert len(await take(fast, 5)) == 5
    await store.create(pod_key("p5"), pod("p5"))  # the sixth event does not fit in slow's buffer
    with pytest.raises(Compacted):
        await anext(slow)
    with pytest.raises(Compacted):  # it stays expired
        await anext(slow)
    assert [e.key for e in await take(fast, 1)] == [pod_key("p5")]
    # A fresh watch from a revision still in the window works.
    again = store.watch("/", 0)
    assert len(await take(again, 6)) == 6


async def test_overflow_while_blocked_in_iteration(make_store: StoreFactory) -> None:
    store = await make_store(watcher_buffer=2)
    watcher = store.watch("/", 0)

    async def consume() -> list[Event]:
        got = []
        async for event in watcher:
            got.append(event)
            await asyncio.Event().wait()  # stall forever after the first event
        return got

    consumer = asyncio.create_task(consume())
    await store.create(pod_key("a"), pod("a"))
    await asyncio.sleep(0)
    for name in ["b", "c", "d"]:
        await store.create(pod_key(name), pod(name))
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    with pytest.raises(Compacted) as caught:
        await anext(watcher)
    assert caught.value.requested == 1  # the last revision the consumer received


async def test_watch_older_than_the_window_is_compacted(make_store: StoreFactory) -> None:
    store = await make_store(window=5)
    for i in range(10):
        await store.create(pod_key(f"p{i}"), pod(f"p{i}"))
    assert store.compacted_revision == 5
    with pytest.raises(Compacted) as caught:
        store.watch("/", 4)
    assert (caught.value.requested, caught.value.oldest) == (4, 5)
    watcher = store.watch("/", 5)
    assert [e.revision for e in await take(watcher, 5)] == [6, 7, 8, 9, 10]
    # A watch from the current revision is always fine.
    store.watch("/", store.revision).close()


async def test_close_ends_iteration(store: MemoryStore) -> None:
    watcher = store.watch("/", 0)

    async def consume() -> list[Event]:
        return [event async for event in watcher]

    consumer = asyncio.create_task(consume())
    await store.create(pod_key("a"), pod("a"))
    await asyncio.sleep(0)
    watcher.close()
    assert [e.key for e in await asyncio.wait_for(consumer, SAFETY)] == [pod_key("a")]
    await store.create(pod_key("b"), pod("b"))  # a closed watcher gets nothing more
    with pytest.raises(StopAsyncIteration):
        await anext(watcher)


async def test_store_close_ends_watches(store: MemoryStore) -> None:
    watcher = store.watch("/", 0)
    await store.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(watcher), SAFETY)
