"""Small value builders shared by the store tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nanokube.store.memory import MemoryStore

# make_store(**options): a started store of the backend under test (see conftest.py).
StoreFactory = Callable[..., Awaitable[MemoryStore]]


def pod(name: str, namespace: str = "default", **extra: Any) -> dict[str, Any]:
    """A small pod-shaped value."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "demo"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        **extra,
    }


def pod_key(name: str, namespace: str = "default") -> str:
    return f"/core/pods/{namespace}/{name}"
