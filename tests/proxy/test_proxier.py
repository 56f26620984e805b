"""The Proxier against an in-process API server with a recording backend: what it syncs, and how often."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.proxy.nftables import Snapshot
from nanokube.proxy.proxier import Proxier, ProxySettings, node_addresses


class Recorder:
    def __init__(self) -> None:
        self.snapshots: list[Snapshot] = []
        self.cleaned = False
        self.fail_next = 0
        self.intact = True
        self.verified = 0

    async def verify(self) -> bool:
        self.verified += 1
        intact, self.intact = self.intact, True
        return intact

    async def sync(self, snap: Snapshot) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("kernel said no")
        self.snapshots.append(snap)

    async def cleanup(self) -> None:
        self.cleaned = True


async def until(check, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def proxier(cluster: InProcessCluster, backend: Recorder, **settings: Any) -> AsyncIterator[Proxier]:
    p = Proxier(cluster.client, backend, ProxySettings(node_name="n1", **settings))
    stop = asyncio.Event()
    task = asyncio.create_task(p.run(stop=stop))
    try:
        await asyncio.wait_for(p.synced.wait(), 10)
        yield p
    finally:
        stop.set()
        await task


def svc(name: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}


async def test_services_and_slices_reach_the_backend_and_cleanup_runs_on_exit() -> None:
    async with InProcessCluster() as cluster:
        services = cluster.resource("", "v1", "services")
        slices = cluster.resource("discovery.k8s.io", "v1", "endpointslices")
        backend = Recorder()
        async with proxier(cluster, backend):
            await cluster.client.create(services, "default", svc("web"))
            await cluster.client.create(slices, "default", {
                "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4", "endpoints": [{"addresses": ["10.42.0.5"]}], "ports": [{"port": 8080}]})
            await until(lambda: backend.snapshots and "default/web" in backend.snapshots[-1].slices,
                        "the slice in a snapshot")
            last = backend.snapshots[-1]
            assert last.services["default/web"]["spec"]["clusterIP"]
            assert last.ctx.node_name == "n1" and last.ctx.cluster_cidr == "10.42.0.0/16"
        assert backend.cleaned


async def test_a_burst_of_changes_is_coalesced() -> None:
    async with InProcessCluster() as cluster:
        services = cluster.resource("", "v1", "services")
        backend = Recorder()
        async with proxier(cluster, backend, coalesce=0.2):
            before = len(backend.snapshots)
            for i in range(20):
                await cluster.client.create(services, "default", svc(f"s{i}"))
            await until(lambda: backend.snapshots and len(backend.snapshots[-1].services) >= 21, "all services")
            assert len(backend.snapshots) - before < 20


async def test_node_port_addresses_come_from_the_node_unless_given() -> None:
    async with InProcessCluster() as cluster:
        nodes = cluster.resource("", "v1", "nodes")
        await cluster.client.create(nodes, "", {"metadata": {"name": "n1"}})
        await cluster.client.patch(nodes, "", "n1", {"status": {"addresses": [
            {"type": "InternalIP", "address": "192.0.2.2"}, {"type": "Hostname", "address": "n1"},
            {"type": "InternalIP", "address": "fd00::2"}]}}, subresource="status")
        backend = Recorder()
        async with proxier(cluster, backend):
            await until(lambda: backend.snapshots[-1].ctx.node_ips == ("192.0.2.2",), "the node's address")
        fixed = Recorder()
        async with proxier(cluster, fixed, node_ips=("198.51.100.1",)):
            assert fixed.snapshots[-1].ctx.node_ips == ("198.51.100.1",)


async def test_a_failed_sync_is_retried() -> None:
    async with InProcessCluster() as cluster:
        backend = Recorder()
        backend.fail_next = 2
        async with proxier(cluster, backend):
            assert backend.snapshots and backend.fail_next == 0


def test_node_addresses_skip_hostnames_and_ipv6() -> None:
    node = {"status": {"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "ExternalIP", "address": "1.2.3.4"},
                                     {"type": "InternalIP", "address": "fd00::1"},
                                     {"type": "InternalIP", "address": "1.2.3.5 } ; flush ruleset"}]}}
    assert node_addresses(node) == ("1.2.3.4",) and node_addresses(None) == ()


async def test_a_selectorless_service_with_hand_made_endpoints_gets_rules() -> None:
    from nanokube.controllers.endpointslicemirroring import EndpointSliceMirroringController
    from nanokube.proxy.rules import build_ruleset

    async with InProcessCluster() as cluster:
        services = cluster.resource("", "v1", "services")
        endpoints = cluster.resource("", "v1", "endpoints")
        await cluster.client.create(services, "default", {"metadata": {"name": "ext"},
                                                          "spec": {"ports": [{"port": 80, "targetPort": 9000}]}})
        await cluster.client.create(endpoints, "default", {"metadata": {"name": "ext"}, "subsets": [
            {"addresses": [{"ip": "192.0.2.50"}], "ports": [{"port": 9000}]}]})
        stop = asyncio.Event()
        mirroring = asyncio.create_task(EndpointSliceMirroringController(cluster.client).run(stop=stop))
        backend = Recorder()
        try:
            async with proxier(cluster, backend):
                def programmed() -> bool:
                    snap = backend.snapshots[-1]
                    rules = build_ruleset(snap.services.values(), snap.slices, snap.ctx)
                    return any(r.endswith("dnat to 192.0.2.50:9000") for body in rules.chains.values() for r in body)

                await until(programmed, "a DNAT to the hand-made endpoint")
        finally:
            stop.set()
            await mirroring


async def test_when_quiet_the_backend_verifies_and_a_broken_one_is_synced_again() -> None:
    async with InProcessCluster() as cluster:
        backend = Recorder()
        async with proxier(cluster, backend, resync_period=0.05):
            await until(lambda: backend.verified >= 2, "verification while nothing changes")
            synced = len(backend.snapshots)
            backend.intact = False
            await until(lambda: len(backend.snapshots) > synced, "a sync after a failed verification")
