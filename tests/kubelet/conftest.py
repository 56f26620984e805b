"""Fixtures the real-runtime tests share: a busybox root filesystem per module, and a native runtime per test
that must leave nothing on the host (its sandboxes are removed, then the host is checked and force-cleaned)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from native_helpers import Native, busybox, force_clean, leftovers, make_native, require_native


@pytest.fixture(scope="module")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_native()
    return busybox(tmp_path_factory.mktemp("images"))


@pytest.fixture
async def native(tmp_path: Path, busybox_rootfs: Path) -> AsyncIterator[Native]:
    n = make_native(tmp_path, busybox_rootfs)
    left: dict[str, list[str]] = {}
    try:
        yield n
        for sandbox in await n.runtime.list_pod_sandboxes():
            await n.runtime.remove_pod_sandbox(sandbox.id)
        await n.runtime.close()
        left = {k: v for k, v in leftovers(n).items() if v}
    finally:
        await n.runtime.close()
        force_clean(n)
    assert not left, f"left on the host: {left}"
