"""Cross-node Pod traffic for one native node: routes to the other nodes' pod CIDRs, kept as Nodes come and go.

``RouteManager.run`` watches Nodes, recomputes ``routes.plan`` whenever one changes (a burst of changes is one
recomputation), applies the difference from what it applied before, and on the way out removes everything it
added (routes, the VXLAN device, the masquerade exemption); the Pods themselves are not touched. Whether a peer
is directly connected is asked of the kernel (``ip route get``) each time, so a node that moves behind a
router switches to VXLAN at the next change. A failed step is logged and retried a few seconds later; the
other routes stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from dataclasses import dataclass

from nanokube.client.informer import Informer
from nanokube.client.interface import Client

from . import routes
from .command import CommandResult, run

log = logging.getLogger(__name__)


@dataclass
class RouteSettings:
    node_name: str
    node_address: str  # this node's InternalIP: the VXLAN source
    pod_cidr: str  # this node's pod CIDR
    cluster_cidr: str = "10.42.0.0/16"
    vxlan_device: str = "nk.vxlan"
    vxlan_mtu: int = 0
    retry_interval: float = 5.0
    timeout: float = 10.0
    command_prefix: tuple[str, ...] = ()  # every command runs behind it (tests: ip netns exec NAME)


async def directly_connected(address: str, *, timeout: float = 10.0, prefix: tuple[str, ...] = ()) -> bool:
    """True when the kernel reaches ``address`` without a gateway (``ip route get`` names no ``via``)."""
    result = await run([*prefix, "ip", "-4", "route", "get", address], timeout=timeout)
    if not result.ok:
        return False
    words = result.stdout.decode(errors="replace").split()
    return "via" not in words and "unreachable" not in words


class RouteManager:
    def __init__(self, client: Client, settings: RouteSettings) -> None:
        nodes = client.registry.get("", "v1", "nodes")
        assert nodes is not None
        self.settings = settings
        self.nodes = Informer(client, nodes)
        self.applied = routes.RoutePlan()
        self._changed = asyncio.Event()
        self.nodes.add_handler(lambda kind, obj, old: self._changed.set())
        self.exempted = False
        self._dirty = False

    async def desired(self) -> routes.RoutePlan:
        s = self.settings
        remote = routes.peers(self.nodes.items(), s.node_name, s.cluster_cidr)
        connected = {p.address: await directly_connected(p.address, timeout=s.timeout, prefix=s.command_prefix)
                     for p in remote}
        return routes.plan(remote, connected.__getitem__, device=s.vxlan_device, local_address=s.node_address,
                           local_pod_cidr=s.pod_cidr, mtu=s.vxlan_mtu)

    async def _execute(self, commands: routes.Commands) -> bool:
        ok = True
        for argv, tolerant in commands.steps:
            result = await self._run(argv)
            if not result.ok and not tolerant:
                log.warning("cross-node routes: %s", result.describe())
                ok = False
        return ok

    async def _run(self, argv: list[str]) -> CommandResult:
        return await run([*self.settings.command_prefix, *argv], timeout=self.settings.timeout)

    async def reconcile(self) -> bool:
        """Bring the host in line with the Nodes now in the cache; False when a step failed (the next call
        then re-applies the whole plan: every adding step is idempotent)."""
        wanted = await self.desired()
        if wanted == self.applied and not self._dirty:
            return True
        commands = routes.diff(self.applied, wanted)
        if self._dirty:
            commands.steps += routes.diff(routes.RoutePlan(), wanted).steps
        ok = await self._execute(commands)
        self.applied, self._dirty = wanted, not ok
        if ok:
            log.info("cross-node routes: host-gw %s, vxlan %s",
                     [p.pod_cidr for p in wanted.host_gw] or "none", [p.pod_cidr for p in wanted.vxlan] or "none")
        return ok

    async def exempt_pod_traffic(self, add: bool) -> None:
        """Keep (or stop keeping) Pod-to-Pod traffic in the cluster range out of the bridge's masquerade."""
        if shutil.which("iptables") is None:
            if add:
                log.warning("iptables is missing: traffic to other nodes' Pods is masqueraded")
            return
        rule = routes.masquerade_exemption(self.settings.pod_cidr, self.settings.cluster_cidr)
        present = (await self._run(["iptables", "-t", "nat", "-C", "POSTROUTING", *rule])).ok
        if add and not present:
            result = await self._run(["iptables", "-t", "nat", "-I", "POSTROUTING", "1", *rule])
            if not result.ok:
                log.warning("traffic to other nodes' Pods may be masqueraded: %s", result.describe())
        elif not add:
            while present:
                present = (await self._run(["iptables", "-t", "nat", "-D", "POSTROUTING", *rule])).ok
        self.exempted = add

    async def run(self, *, stop: asyncio.Event) -> None:
        informer = asyncio.create_task(self.nodes.run(stop=stop), name="routes-node-informer")
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await self.exempt_pod_traffic(True)
            await asyncio.wait({asyncio.ensure_future(self.nodes.synced.wait()), stopping},
                               return_when=asyncio.FIRST_COMPLETED)
            while not stop.is_set():
                self._changed.clear()
                ok = await self.reconcile()
                waking = asyncio.ensure_future(self._changed.wait())
                await asyncio.wait({waking, stopping}, timeout=None if ok else self.settings.retry_interval,
                                   return_when=asyncio.FIRST_COMPLETED)
                waking.cancel()
                await asyncio.sleep(0.05)  # coalesce a burst of Node events into one recomputation
        finally:
            stopping.cancel()
            informer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await informer
            await self.shutdown()

    async def shutdown(self) -> None:
        """Remove every route, the VXLAN device and the exemption this manager added."""
        with contextlib.suppress(Exception):
            await self._execute(routes.teardown(self.applied))
        self.applied = routes.RoutePlan()
        with contextlib.suppress(Exception):
            await self.exempt_pod_traffic(False)
