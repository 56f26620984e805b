"""Fixtures for the store tests: every contract test runs against each in-process backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from store_helpers import StoreFactory

from nanokube.store.memory import MemoryStore
from nanokube.store.sqlite import SqliteStore


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_store(backend: str, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Build and start a store of the current backend; all are closed after the test."""
    stores: list[MemoryStore] = []

    async def make(**options: Any) -> MemoryStore:
        store: MemoryStore
        if backend == "memory":
            store = MemoryStore(**options)
        else:
            options.setdefault("compact_interval", 0)
            store = SqliteStore(tmp_path / f"store{len(stores)}.db", **options)
        await store.start()
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> MemoryStore:
    return await make_store()
