"""Crash-test helper: write to a SqliteStore from many tasks and print every acknowledged write.

Run as ``python crash_writer.py DB_PATH WRITERS TAG`` (TAG keeps keys of separate runs apart). Each line on stdout is ``<key> <revision>`` and is
printed (and flushed) only after the store acknowledged that write, so whoever kills this process knows
which writes must have survived. Stops by itself after a bounded number of writes.
"""

from __future__ import annotations

import asyncio
import sys

from nanokube.store.sqlite import SqliteStore

WRITES_PER_WRITER = 5000


async def writer(store: SqliteStore, tag: str, n: int) -> None:
    for i in range(WRITES_PER_WRITER):
        key = f"/core/configmaps/crash/{tag}-w{n}-{i}"
        value = {"metadata": {"name": f"w{n}-{i}", "namespace": "crash"}, "data": {"payload": "x" * 200}}
        kv = await store.create(key, value)
        print(key, kv.mod_revision, flush=True)
        if i % 2:
            kv = await store.update(
                key, {**value, "data": {"payload": "y"}}, expected_revision=kv.mod_revision
            )
            print(key, kv.mod_revision, flush=True)


async def main(path: str, writers: int, tag: str) -> None:
    store = SqliteStore(path, compact_interval=0)
    await store.start()
    print("started", store.revision, flush=True)
    await asyncio.gather(*(writer(store, tag, n) for n in range(writers)))
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
