"""SqliteStore specifics: commit-before-notify, persistence across restarts, compaction, failure."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from store_helpers import pod, pod_key

from nanokube.store.interface import Compacted, Event, KeyExists, StoreError
from nanokube.store.sqlite import SqliteStore

SAFETY = 5.0  # seconds; only guards against a hang, never measured


async def open_store(path: Path, **options: float) -> SqliteStore:
    options.setdefault("compact_interval", 0)
    store = SqliteStore(path, **options)  # type: ignore[arg-type]
    await store.start()
    return store


def rows(path: Path, sql: str = "SELECT id, name, created, deleted FROM kv ORDER BY id") -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def take(watcher: object, n: int) -> list[Event]:
    return [await asyncio.wait_for(anext(watcher), SAFETY) for _ in range(n)]  # type: ignore[call-overload]


async def test_log_rows_match_revisions(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "s.db")
    await store.create(pod_key("a"), pod("a"))
    await store.update(pod_key("a"), pod("a"))
    await store.delete(pod_key("a"))
    await store.close()
    assert rows(tmp_path / "s.db") == [
        (1, pod_key("a"), 1, 0),
        (2, pod_key("a"), 0, 0),
        (3, pod_key("a"), 0, 1),
    ]
    prevs = rows(tmp_path / "s.db", "SELECT id, create_revision, prev_revision FROM kv ORDER BY id")
    assert prevs == [(1, 1, 0), (2, 1, 1), (3, 1, 2)]


async def test_watchers_only_see_committed_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await open_store(path)
    watcher = store.watch("/", 0)
    checker = sqlite3.connect(path)
    missing: list[int] = []

    async def watch_and_check(n: int) -> None:
        for event in await take(watcher, n):
            found = checker.execute("SELECT name FROM kv WHERE id = ?", (event.revision,)).fetchone()
            if found != (event.key,):
                missing.append(event.revision)

    async def writer(w: int) -> None:
        for i in range(25):
            await store.create(pod_key(f"w{w}-{i}"), pod(f"w{w}-{i}"))

    checking = asyncio.create_task(watch_and_check(200))
    await asyncio.gather(*(writer(w) for w in range(8)))
    await asyncio.wait_for(checking, SAFETY)
    checker.close()
    await store.close()
    assert missing == []


async def test_write_waits_for_commit_and_so_do_readers_and_watchers(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await open_store(path)
    await store.create(pod_key("old"), pod("old"))
    watcher = store.watch("/", store.revision)
    gate = threading.Event()
    assert store._executor is not None
    blocked = store._executor.submit(gate.wait)  # holds the worker thread: nothing can commit
    try:
        writing = asyncio.create_task(store.create(pod_key("a"), pod("a")))
        reading = asyncio.create_task(store.get(pod_key("a")))
        listing = asyncio.create_task(store.list("/"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert store.ordered_revision == 2  # ordered ...
        assert store.revision == store.committed_revision == 1
        assert not writing.done()  # ... but not acknowledged,
        assert not reading.done() and not listing.done()  # not shown to readers,
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(watcher), 0.05)  # not announced,
        assert rows(path) == [(1, pod_key("old"), 1, 0)]  # and not on disk.
        with pytest.raises(KeyExists):  # Yet the next write's conflict check already sees it.
            await store.create(pod_key("a"), pod("a"))
    finally:
        gate.set()
    blocked.result(SAFETY)
    kv = await asyncio.wait_for(writing, SAFETY)
    assert await asyncio.wait_for(reading, SAFETY) == kv
    page = await asyncio.wait_for(listing, SAFETY)
    assert page.revision == 2 and [item.key for item in page.items] == [pod_key("a"), pod_key("old")]
    [event] = await take(watcher, 1)
    assert event.revision == kv.mod_revision == store.revision == 2
    assert rows(path) == [(1, pod_key("old"), 1, 0), (2, pod_key("a"), 1, 0)]
    await store.close()


async def test_state_and_history_survive_restart(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await open_store(path)
    for i in range(5):
        await store.create(pod_key(f"p{i}"), pod(f"p{i}"))
    await store.update(pod_key("p1"), pod("p1", status={"phase": "Running"}))
    await store.delete(pod_key("p2"))
    before = await store.list("/")
    await store.close()

    store = await open_store(path)
    after = await store.list("/")
    assert after == before
    assert store.revision == 7
    assert store.compacted_revision == 0
    # Watches from before the restart replay the logged events, with their previous values.
    events = await take(store.watch("/core/pods/", 5), 2)
    assert [(e.type, e.key, e.revision) for e in events] == [
        ("MODIFIED", pod_key("p1"), 6),
        ("DELETED", pod_key("p2"), 7),
    ]
    assert events[0].prev is not None and events[0].prev["metadata"]["resourceVersion"] == "2"
    assert events[0].value["status"] == {"phase": "Running"}
    assert events[1].value["metadata"]["resourceVersion"] == "7"
    assert events[1].prev is not None and events[1].prev["metadata"]["resourceVersion"] == "3"
    kv = await store.create(pod_key("new"), pod("new"))
    assert kv.mod_revision == 8
    await store.close()


async def test_restart_window_limits_replay(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await open_store(path)
    for i in range(10):
        await store.create(pod_key(f"p{i}"), pod(f"p{i}"))
    await store.close()
    store = await open_store(path, window=4)
    assert store.compacted_revision == 6
    with pytest.raises(Compacted):
        store.watch("/", 5)
    assert [e.revision for e in await take(store.watch("/", 6), 4)] == [7, 8, 9, 10]
    await store.close()


async def test_a_hole_in_the_log_is_never_replayed_across(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await open_store(path)
    for i in range(6):
        await store.create(pod_key(f"p{i}"), pod(f"p{i}"))
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM kv WHERE id = 3")
    store = await open_store(path)
    assert store.compacted_revision == 3
    with pytest.raises(Compacted):
        store.watch("/", 2)
    assert [e.revision for e in await take(store.watch("/", 3), 3)] == [4, 5, 6]
    await store.close()


async def churn(store: SqliteStore) -> None:
    for i in range(10):
        await store.create(pod_key(f"p{i}"), pod(f"p{i}"))
    for round_ in range(5):
        for i in range(10):
            await store.update(pod_key(f"p{i}"), pod(f"p{i}", status={"round": round_}))
    for i in range(0, 10, 2):
        await store.delete(pod_key(f"p{i}"))


async def test_compaction_keeps_current_state(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await open_store(path, keep_revisions=10)
    await churn(store)  # revisions 1..65
    before = await store.list("/")
    assert await store.compact() == 55
    assert store.compacted_revision == 55
    assert await store.list("/") == before
    with pytest.raises(Compacted):
        store.watch("/", 54)
    assert [e.revision for e in await take(store.watch("/", 55), 10)] == list(range(56, 66))
    # Superseded rows and tombstones at or below 55 are gone; rows above it are all kept.
    assert [r[0] for r in rows(path)] == list(range(46, 66))
    await store.close()

    store = await open_store(path)
    assert await store.list("/") == before
    assert store.compacted_revision == 55
    assert store.revision == 65
    with pytest.raises(Compacted):
        store.watch("/", 54)
    events = await take(store.watch("/", 55), 10)
    assert [e.type for e in events] == ["MODIFIED"] * 5 + ["DELETED"] * 5
    assert all(e.prev is not None for e in events)
    await store.close()


async def test_revision_marker_survives_compacting_everything(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await open_store(path, keep_revisions=0)
    for i in range(5):
        await store.create(pod_key(f"p{i}"), pod(f"p{i}"))
    for i in range(5):
        await store.delete(pod_key(f"p{i}"))
    assert await store.compact() == 10
    await store.close()
    assert rows(path) == []
    # Even sqlite's own sequence is gone: only the compaction marker remembers the revision.
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM sqlite_sequence")

    store = await open_store(path)
    assert store.revision == 10
    assert store.compacted_revision == 10
    assert (await store.create(pod_key("again"), pod("again"))).mod_revision == 11
    await store.close()


async def test_background_compaction(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "s.db", keep_revisions=5, compact_interval=0.01)
    await churn(store)
    for _ in range(500):  # bounded wait for the background task, not a timing assertion
        if store.compacted_revision >= 60:
            break
        await asyncio.sleep(0.01)
    assert store.compacted_revision == 60
    assert await store.count("/") == 5
    await store.close()


async def test_failed_commit_fails_the_store(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await open_store(path)
    await store.create(pod_key("a"), pod("a"))
    watcher = store.watch("/", store.revision)
    with sqlite3.connect(path) as conn:  # an outsider takes the next id, so our commit must fail
        conn.execute("INSERT INTO kv (id, name) VALUES (2, 'intruder')")
    with pytest.raises(StoreError):
        await store.create(pod_key("b"), pod("b"))
    with pytest.raises(StoreError):
        await store.create(pod_key("c"), pod("c"))
    with pytest.raises(Compacted):
        await asyncio.wait_for(anext(watcher), SAFETY)
    with pytest.raises(StoreError):  # memory may hold writes that never reached disk
        await store.get(pod_key("a"))
    await store.close()


async def test_start_twice_and_unstarted_writes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    with pytest.raises(StoreError):
        await store.create(pod_key("a"), pod("a"))
    await store.start()
    with pytest.raises(StoreError):
        await store.start()
    await store.close()
    await store.close()


async def test_non_json_value_is_rejected_before_it_takes_a_revision(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "s.db")
    with pytest.raises(TypeError):
        await store.create(pod_key("a"), {"metadata": {}, "bad": object()})
    assert store.revision == 0
    assert await store.get(pod_key("a")) is None
    assert (await store.create(pod_key("a"), pod("a"))).mod_revision == 1
    await store.close()
