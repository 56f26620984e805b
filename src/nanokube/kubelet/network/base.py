"""What a Pod's network is, as the runtime sees it, and the contract every pod-network provider keeps.

``PodNetwork`` (CNI bridge + host-local, root) and ``LoopbackNetwork`` (a 127.x address, no namespace, for the
``process`` runtime) both satisfy ``PodNetworkProvider``, so a runtime picks one at start-up and never asks
which it got. ``NetworkError`` is a ``SandboxFailure``: when setting up a Pod's network fails, the kubelet
reports ``FailedCreatePodSandBox`` with the plugin's message, as Kubernetes does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from nanokube.kubelet.runtime.interface import SandboxFailure


class NetworkError(SandboxFailure):
    """Setting up, checking or tearing down a Pod's network failed; the message says what and why."""


@dataclass(frozen=True)
class PodNetworkInfo:
    pod_uid: str
    pod_namespace: str
    pod_name: str
    netns_path: str  # /run/netns/<name>; "" for LoopbackNetwork (the Pod shares the host's namespace)
    ip: str  # the Pod IP, no prefix length
    gateway: str  # the bridge address Pods route through; "" for LoopbackNetwork
    prefix_len: int = 0
    interface: str = ""  # the Pod-side interface ("eth0"), "" for LoopbackNetwork


class PodNetworkProvider(Protocol):
    """One node's Pod networking: give each Pod an address, take it back, find what a previous agent left."""

    async def start(self) -> None:
        """Prepare the node side (bridge, state dirs). Idempotent; call before anything else."""

    async def setup(self, pod_uid: str, pod_namespace: str, pod_name: str) -> PodNetworkInfo:
        """Give the Pod its network and address. Idempotent: a second call returns the first one's result."""

    async def teardown(self, pod_uid: str) -> None:
        """Release the Pod's address and remove what ``setup`` created. Idempotent."""

    async def check(self, pod_uid: str) -> None:
        """Raise ``NetworkError`` when the Pod's network is no longer as ``setup`` left it."""

    async def recover(self) -> list[PodNetworkInfo]:
        """After an agent restart: the Pods whose networks still exist (half-made ones are torn down)."""

    def get(self, pod_uid: str) -> PodNetworkInfo | None:
        """The Pod's network as set up or recovered by this object, if any."""

    async def shutdown(self, *, remove_bridge: bool = False) -> None:
        """The agent is stopping: Pod networks stay; the node-wide parts go only if asked."""


class KeyedLock:
    """One asyncio lock per key (a Pod uid), forgotten once nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
