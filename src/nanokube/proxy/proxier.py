"""The per-node proxy component: informers on Services, EndpointSlices and its Node, and one sync loop.

``Proxier.run`` watches Services, EndpointSlices and this node's Node object (whose InternalIP/ExternalIP
addresses take node-port traffic unless ``ProxySettings.node_ips`` names them) and hands a ``Snapshot`` to a
backend (``NftablesBackend`` or ``UserspaceBackend``). Informer events only mark the state dirty; the loop
waits ``coalesce`` seconds after the first change and at least ``min_interval`` between syncs, so a burst of
changes is one apply. A failed sync is retried with back-off. After ``resync_period`` quiet seconds the backend's
``verify`` (when it has one) checks the rules are still in the kernel; if not, the next sync replaces them. On the way out ``run`` calls the backend's
``cleanup`` (the node's rules go with it). ``synced`` is set after the first successful sync;
``on_synced(revision)`` is called after each, with the count of changes seen so far (benchmarks use it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from nanokube.client.informer import Informer, object_key
from nanokube.client.interface import JSON, Client

from .rules import NodeContext, Snapshot, group_slices

log = logging.getLogger(__name__)


class Backend(Protocol):
    async def sync(self, snap: Snapshot) -> None: ...

    async def cleanup(self) -> None: ...


@dataclass
class ProxySettings:
    node_name: str
    node_ips: tuple[str, ...] = ()  # empty: the Node's InternalIP and ExternalIP addresses
    cluster_cidr: str = "10.42.0.0/16"  # traffic to a cluster IP from outside it is masqueraded
    coalesce: float = 0.005  # seconds to wait after the first change of a burst
    min_interval: float = 0.01  # seconds between two syncs
    cleanup_on_exit: bool = True
    resync_period: float = 30.0  # seconds without changes after which the backend checks its rules are intact


def node_addresses(node: JSON | None) -> tuple[str, ...]:
    """The Node's IPv4 InternalIP and ExternalIP addresses (anything else, or malformed, is skipped: these
    strings end up in nft scripts)."""
    found = []
    for addr in ((node or {}).get("status") or {}).get("addresses") or []:
        if addr.get("type") not in ("InternalIP", "ExternalIP"):
            continue
        try:
            if ipaddress.ip_address(str(addr.get("address", ""))).version == 4:
                found.append(str(addr["address"]))
        except ValueError:
            continue
    return tuple(found)


class Proxier:
    def __init__(self, client: Client, backend: Backend, settings: ProxySettings) -> None:
        reg = client.registry
        services, slices, nodes = (reg.get("", "v1", "services"), reg.get("discovery.k8s.io", "v1", "endpointslices"),
                                   reg.get("", "v1", "nodes"))
        assert services and slices and nodes
        self.backend = backend
        self.settings = settings
        self.services = Informer(client, services)
        self.slices = Informer(client, slices)
        self.node = Informer(client, nodes, field_selector=f"metadata.name={settings.node_name}")
        self.synced = asyncio.Event()
        self.changes = 0  # informer events seen
        self.on_synced: Callable[[int], None] | None = None
        self._dirty = asyncio.Event()
        for informer in (self.services, self.slices, self.node):
            informer.add_handler(self._changed)

    def _changed(self, kind: str, obj: JSON, old: JSON | None) -> None:
        self.changes += 1
        self._dirty.set()

    def snapshot(self) -> Snapshot:
        ips = self.settings.node_ips or node_addresses(self.node.get(self.settings.node_name))
        ctx = NodeContext(self.settings.node_name, tuple(ips), self.settings.cluster_cidr)
        services = {object_key(s): s for s in self.services.items()}
        return Snapshot(services, group_slices(self.slices.items()), ctx)

    async def run(self, *, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(i.run(stop=stop), name="proxy-informer")
                 for i in (self.services, self.slices, self.node)]
        try:
            await self._loop(stop)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self.settings.cleanup_on_exit:
                try:
                    await self.backend.cleanup()
                except Exception:
                    log.exception("proxy: cleanup failed")

    async def _wait(self, event: asyncio.Event, stop: asyncio.Event, timeout: float | None = None) -> bool:
        """Wait for ``event`` or ``stop``; True when ``event`` was set."""
        waiters = {asyncio.create_task(event.wait()), asyncio.create_task(stop.wait())}
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        return event.is_set() and not stop.is_set()

    async def _verify(self) -> None:
        """Quiet for a while: let the backend check the kernel still holds its rules (it rebuilds if not)."""
        verify = getattr(self.backend, "verify", None)
        if verify is None:
            return
        try:
            if not await verify():
                log.warning("proxy: the rules were changed behind our back; replacing them")
                self._dirty.set()
        except Exception as err:
            log.warning("proxy: cannot verify the rules (%s)", err)

    async def _loop(self, stop: asyncio.Event) -> None:
        ready = asyncio.Event()

        async def all_synced() -> None:
            await asyncio.gather(self.services.synced.wait(), self.slices.synced.wait(), self.node.synced.wait())
            ready.set()

        waiter = asyncio.create_task(all_synced())
        try:
            if not await self._wait(ready, stop):
                return
        finally:
            waiter.cancel()
        delay = 0.1
        self._dirty.set()
        while not stop.is_set():
            if not await self._wait(self._dirty, stop, self.settings.resync_period):
                if stop.is_set():
                    return
                await self._verify()
                continue
            await asyncio.sleep(self.settings.coalesce)
            self._dirty.clear()
            seen = self.changes
            try:
                await self.backend.sync(self.snapshot())
            except Exception as err:
                log.warning("proxy: sync failed (%s); retrying in %.1fs", err, delay)
                self._dirty.set()
                await self._wait(stop, stop, delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.1
            self.synced.set()
            if self.on_synced is not None:
                self.on_synced(seen)
            await asyncio.sleep(self.settings.min_interval)
