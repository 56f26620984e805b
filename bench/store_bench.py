"""Store write throughput: SqliteStore with concurrent writers against raw sqlite3 baselines, same run.

Measures creates/s through ``SqliteStore`` (group commit, 16 writer tasks by default) and, on the same
machine in the same run, raw ``sqlite3`` inserts of the same row shape into the same kine-style table
with WAL + synchronous=NORMAL: one transaction per insert (what a naive store would do) and batched
transactions (the ceiling for this disk). ``MemoryStore`` shows the cost of the shared in-memory core.
Prints one JSON line. Usage: ``python bench/store_bench.py [--objects N] [--writers W] [--size BYTES]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from nanokube.store import _sqlitelog
from nanokube.store.memory import MemoryStore
from nanokube.store.sqlite import SqliteStore


def make_value(i: int, size: int) -> dict[str, Any]:
    """A ConfigMap-shaped object of roughly ``size`` bytes once encoded."""
    value: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"cm-{i}", "namespace": "bench", "labels": {"app": "bench", "i": str(i)}},
        "data": {},
    }
    filler = size - len(orjson.dumps(value))
    value["data"]["payload"] = "x" * max(0, filler - 16)
    return value


def key(i: int) -> str:
    return f"/core/configmaps/bench/cm-{i}"


async def store_creates(store: MemoryStore, values: list[dict[str, Any]], writers: int) -> float:
    """Creates/s with ``writers`` tasks sharing the objects round-robin."""
    await store.start()

    async def writer(w: int) -> None:
        for i in range(w, len(values), writers):
            await store.create(key(i), values[i])

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    elapsed = time.perf_counter() - started
    assert store.revision == len(values)
    await store.close()
    return len(values) / elapsed


def raw_inserts(path: Path, values: list[dict[str, Any]], batch: int) -> float:
    """Inserts/s of kine-shaped rows via plain sqlite3, ``batch`` rows per transaction."""
    conn = _sqlitelog.open_log(path)
    started = time.perf_counter()
    for first in range(0, len(values), batch):
        rows = [
            (i + 1, key(i), 1, 0, i + 1, 0, orjson.dumps(values[i]))
            for i in range(first, min(first + batch, len(values)))
        ]
        conn.execute("BEGIN")
        conn.executemany(_sqlitelog.INSERT, rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(values) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20000)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument(
        "--batch", type=int, default=1000, help="rows per transaction for the batched baseline"
    )
    args = parser.parse_args()
    values = [make_value(i, args.size) for i in range(args.objects)]
    with tempfile.TemporaryDirectory(prefix="nanokube-bench-") as tmp:
        root = Path(tmp)
        sqlite_store = asyncio.run(
            store_creates(SqliteStore(root / "store.db", compact_interval=0), values, args.writers)
        )
        memory_store = asyncio.run(store_creates(MemoryStore(), values, args.writers))
        raw_single = raw_inserts(root / "raw-single.db", values, 1)
        raw_batched = raw_inserts(root / "raw-batched.db", values, args.batch)
    result = {
        "bench": "store_creates",
        "objects": args.objects,
        "writers": args.writers,
        "value_bytes": len(orjson.dumps(values[0])),
        "sqlite_version": sqlite3.sqlite_version,
        "sqlite_store_creates_per_s": round(sqlite_store),
        "memory_store_creates_per_s": round(memory_store),
        "raw_sqlite_tx_per_insert_per_s": round(raw_single),
        f"raw_sqlite_batched_{args.batch}_per_s": round(raw_batched),
        "sqlite_store_vs_raw_tx_per_insert": round(sqlite_store / raw_single, 2),
        "sqlite_store_vs_raw_batched": round(sqlite_store / raw_batched, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
