"""The embedded default store: ``MemoryStore``'s state and watch logic, made durable in a kine-style
sqlite log (see ``_sqlitelog`` for the table and its durability).

Why it is shaped so:

* All current state stays in memory (loaded at start), so reads never touch disk.
* Writes are ordered and applied in memory synchronously on the event loop, then handed to a
  group-commit flusher: one task takes every pending row and commits them in ONE transaction on a
  dedicated worker thread, so many concurrent writers share one fsync-free WAL commit and the event
  loop never blocks on sqlite. Only after the commit are the writers' futures resolved and the watch
  events dispatched: a watcher never sees a write that is not on disk.
* Reads snapshot memory at once and return when that snapshot's revision is committed, so nobody is
  ever shown state (or a revision) that a crash could take back; with no write in flight they never wait.
* A compaction task drops superseded rows older than ``revision - keep_revisions`` every
  ``compact_interval`` seconds, in chunks so commits interleave with it.
* If a commit fails the store cannot tell what is on disk any more: it fails every pending and future
  write and read, cuts off watchers with ``Compacted``, and must be restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import orjson
from sortedcontainers import SortedDict

from nanokube.store import _sqlitelog as log
from nanokube.store.interface import JSON, Event, StoreError
from nanokube.store.memory import MemoryStore

logger = logging.getLogger(__name__)

T = TypeVar("T")

COMPACT_CHUNK = 1000  # revisions per compaction transaction


class SqliteStore(MemoryStore):
    """A store persisted in one sqlite file; see the module docstring for its guarantees."""

    def __init__(
        self,
        path: str | Path,
        *,
        window: int = 10000,
        watcher_buffer: int = 10000,
        compact_interval: float = 300.0,
        keep_revisions: int = 10000,
    ) -> None:
        super().__init__(window=window, watcher_buffer=watcher_buffer)
        self.path = Path(path)
        self._window = window
        self._compact_interval = compact_interval
        self._keep_revisions = max(0, keep_revisions)
        self._closed = True  # until start()
        self._stopping = False
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[log.Row, asyncio.Future[None], Event]] = []
        self._readers: deque[tuple[int, asyncio.Future[None]]] = deque()  # (revision, settled), in order
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._compactor: asyncio.Task[None] | None = None
        self._committed = 0
        self._log_compacted = 0
        self._compact_lock = asyncio.Lock()

    @property
    def revision(self) -> int:
        """The newest committed revision (writes still in flight are not counted)."""
        return self._committed

    @property
    def committed_revision(self) -> int:
        """Same as ``revision``: the newest revision on disk and seen by watchers."""
        return self._committed

    @property
    def ordered_revision(self) -> int:
        """The newest revision assigned, committed or not."""
        return self._revision

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the log, load current state and recent history, start the flusher and compactor."""
        if self._executor is not None:
            raise StoreError("store already started")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nanokube-sqlite")
        self._conn = await self._run(log.open_log, self.path)
        loaded = await self._run(log.load, self._conn, self._window)
        self._items = SortedDict((kv.key, kv) for kv in loaded.items)
        self._revision = self._committed = loaded.revision
        self._log_compacted = loaded.compacted
        self._hub.seed(loaded.events, floor=loaded.floor, last_revision=loaded.revision)
        self._closed = self._stopping = False
        self._flusher = asyncio.create_task(self._flush_loop(), name="nanokube-sqlite-flusher")
        if self._compact_interval > 0:
            self._compactor = asyncio.create_task(self._compact_loop(), name="nanokube-sqlite-compactor")
        logger.info("sqlite store %s: %d keys at revision %d", self.path, len(self._items), self._revision)

    async def close(self) -> None:
        """Commit pending writes, end every watch and close the file. Safe to call twice."""
        self._closed = True
        if self._compactor is not None:
            self._compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._compactor
            self._compactor = None
        if self._flusher is not None:
            self._stopping = True
            self._wake.set()
            await self._flusher
            self._flusher = None
        self._hub.close()
        if self._executor is not None:
            if self._conn is not None:
                await self._run(self._conn.close)
                self._conn = None
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- durability --------------------------------------------------------------------------------

    def _encode(self, value: JSON) -> bytes:
        return orjson.dumps(value)

    async def _commit(
        self, event: Event, create_revision: int, prev_revision: int, encoded: bytes | None
    ) -> None:
        # Queue the row for the next group commit and wait until it is on disk.
        created = event.type == "ADDED"
        deleted = event.type == "DELETED"
        row = (
            event.revision,
            event.key,
            int(created),
            int(deleted),
            create_revision,
            prev_revision,
            encoded or b"",
        )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, done, event))
        self._wake.set()
        await done

    async def _flush_loop(self) -> None:
        assert self._conn is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._run(log.append, self._conn, [row for row, _, _ in batch])
                except Exception as exc:
                    self._fail(exc, batch)
                    return
                self._committed = batch[-1][0][0]
                for _, done, _ in batch:
                    if not done.done():
                        done.set_result(None)
                self._release_readers()
                for _, _, event in batch:
                    self._hub.dispatch(event)
            if self._stopping:
                return

    def _fail(self, exc: Exception, batch: list[tuple[log.Row, asyncio.Future[None], Event]]) -> None:
        logger.error("sqlite store %s: commit failed, store is now read-only: %s", self.path, exc)
        self._failure = exc
        error = StoreError(f"commit failed: {exc}")
        error.__cause__ = exc
        for _, done, _ in batch + self._pending:
            if not done.done():
                done.set_exception(error)
        self._pending = []
        while self._readers:
            _, settled = self._readers.popleft()
            if not settled.done():
                settled.set_exception(error)
        self._hub.fail()

    async def _settle(self, revision: int) -> None:
        if self._failure is not None:
            raise StoreError(f"store failed and must be restarted: {self._failure}") from self._failure
        if revision <= self._committed:
            return
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._readers.append((revision, settled))
        await settled

    def _release_readers(self) -> None:
        # Readers queue in revision order (the revision only grows), so release from the front.
        readers = self._readers
        while readers and readers[0][0] <= self._committed:
            _, settled = readers.popleft()
            if not settled.done():
                settled.set_result(None)

    # -- compaction --------------------------------------------------------------------------------

    async def compact(self, revision: int | None = None) -> int:
        """Drop log rows superseded at or below ``revision`` (default ``committed - keep_revisions``)
        and forget watch history there; returns the compacted revision."""
        async with self._compact_lock:
            target = self._committed - self._keep_revisions if revision is None else revision
            target = min(target, self._committed)
            while self._log_compacted < target and self._conn is not None:
                end = min(self._log_compacted + COMPACT_CHUNK, target)
                deleted = await self._run(log.compact_range, self._conn, self._log_compacted, end)
                logger.debug("sqlite store %s: compacted to %d, %d rows removed", self.path, end, deleted)
                self._log_compacted = end
                self._hub.compact(end)
            return self._log_compacted

    async def _compact_loop(self) -> None:
        while True:
            await asyncio.sleep(self._compact_interval)
            try:
                await self.compact()
            except Exception:
                logger.exception("sqlite store %s: compaction failed", self.path)

    # -- worker thread -----------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            raise StoreError("store is not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))
