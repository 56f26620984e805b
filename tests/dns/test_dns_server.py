"""The DNS server against an in-process cluster: Service, headless, StatefulSet-style, pod and external names,
negative answers, forwarding with a cache, TCP and truncation, and the kube-dns Service it keeps."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from dns_testing import FakeUpstream, ask, fake_upstream

from nanokube.api.objects import deep_copy
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.dns import wire
from nanokube.dns.server import DNSServer, DNSSettings
from nanokube.dns.wire import Message, Soa, Srv

ZONE = "cluster.local"


@dataclass
class Env:
    cluster: InProcessCluster
    server: DNSServer
    upstream: FakeUpstream

    @property
    def port(self) -> int:
        return self.server.port

    async def service(self, name: str, spec: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
        return await self.cluster.client.create(self.cluster.resource("", "v1", "services"), namespace,
                                                {"metadata": {"name": name}, "spec": spec})

    async def slice(self, service: str, endpoints: list[dict[str, Any]], ports: list[dict[str, Any]],
                    name: str = "") -> dict[str, Any]:
        body = {"metadata": {"name": name or f"{service}-abc", "labels": {"kubernetes.io/service-name": service}},
                "addressType": "IPv4", "endpoints": endpoints, "ports": ports}
        return await self.cluster.client.create(self.cluster.resource("discovery.k8s.io", "v1", "endpointslices"),
                                                "default", body)


def _ep(ip: str, hostname: str = "", ready: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"addresses": [ip], "conditions": {"ready": ready}}
    if hostname:
        out["hostname"] = hostname
    return out


async def until(probe: Callable[[], Awaitable[Any]], what: str) -> Any:
    for _ in range(250):
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def answered(port: int, name: str, qtype: int = wire.A) -> Message | None:
    """The reply once it has answers (the informers may not have seen a new object yet)."""
    msg = await ask(port, name, qtype)
    return msg if msg.answers else None


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    proto, upstream_port, transport = await fake_upstream()
    async with InProcessCluster() as cluster:
        server = DNSServer(cluster.client, DNSSettings(listen="127.0.0.1", port=0,
                                                       upstreams=(f"127.0.0.1:{upstream_port}",)))
        stop = asyncio.Event()
        task = asyncio.create_task(server.run(stop=stop))
        await asyncio.wait_for(server.ready.wait(), 10)
        try:
            yield Env(cluster, server, proto)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)
            transport.close()


def _data(msg: Message) -> list[Any]:
    return sorted((r.data for r in msg.answers), key=str)


async def test_cluster_ip_service_records(env: Env) -> None:
    svc = await env.service("web", {"ports": [{"name": "http", "port": 80}, {"name": "stats", "port": 9000, "protocol": "UDP"}]})
    ip = svc["spec"]["clusterIP"]
    name = f"web.default.svc.{ZONE}"
    got = await until(lambda: answered(env.port, name), "the Service's A record")
    assert got.aa and got.rcode == wire.NOERROR and _data(got) == [ip] and got.answers[0].ttl == 5
    nodata = await ask(env.port, name, wire.AAAA)
    assert (nodata.rcode, nodata.answers, [r.rtype for r in nodata.authority]) == (wire.NOERROR, [], [wire.SOA])
    assert [r.data.minimum for r in nodata.authority if isinstance(r.data, Soa)] == [5]
    srv = await ask(env.port, f"_http._tcp.{name}", wire.SRV)
    assert [(r.data.port, r.data.target) for r in srv.answers if isinstance(r.data, Srv)] == [(80, name)]
    assert [(r.name, r.data) for r in srv.additional] == [(name, ip)]
    assert (await ask(env.port, f"_http._udp.{name}", wire.SRV)).rcode == wire.NXDOMAIN
    assert sorted(r.data.port for r in (await ask(env.port, name, wire.SRV)).answers if isinstance(r.data, Srv)) \
        == [80, 9000]
    ptr = await ask(env.port, ".".join(reversed(ip.split("."))) + ".in-addr.arpa", wire.PTR)
    assert _data(ptr) == [name]
    upper = await ask(env.port, f"WEB.Default.SVC.{ZONE.upper()}")
    assert _data(upper) == [ip] and upper.questions[0].name == f"WEB.Default.SVC.{ZONE.upper()}"


async def test_headless_service_and_statefulset_names(env: Env) -> None:
    await env.service("nginx", {"clusterIP": "None", "ports": [{"name": "web", "port": 80}]})
    await env.slice("nginx", [_ep("10.42.0.5", "web-0"), _ep("10.42.0.6", "web-1"), _ep("10.42.0.7"),
                              _ep("10.42.0.8", "web-3", ready=False)], [{"name": "web", "port": 8080, "protocol": "TCP"}])
    name = f"nginx.default.svc.{ZONE}"
    got = await until(lambda: answered(env.port, name), "the headless Service's records")
    assert _data(got) == ["10.42.0.5", "10.42.0.6", "10.42.0.7"]
    assert _data(await ask(env.port, f"web-0.{name}")) == ["10.42.0.5"]
    assert _data(await ask(env.port, f"10-42-0-7.{name}")) == ["10.42.0.7"]
    assert (await ask(env.port, f"web-3.{name}")).rcode == wire.NXDOMAIN  # not ready
    srv = await ask(env.port, f"_web._tcp.{name}", wire.SRV)
    assert sorted((r.data.target, r.data.port) for r in srv.answers if isinstance(r.data, Srv)) == [
        (f"10-42-0-7.{name}", 8080), (f"web-0.{name}", 8080), (f"web-1.{name}", 8080)]
    assert sorted(str(r.data) for r in srv.additional) == ["10.42.0.5", "10.42.0.6", "10.42.0.7"]
    # An ndots:5 client tries the search list first: those names are NXDOMAIN at once, with the zone's SOA.
    searched = await ask(env.port, f"web-0.{name}.default.svc.{ZONE}")
    assert searched.rcode == wire.NXDOMAIN and [r.rtype for r in searched.authority] == [wire.SOA]


async def test_a_changed_endpoint_is_answered_at_once(env: Env) -> None:
    await env.service("nginx", {"clusterIP": "None", "ports": [{"name": "web", "port": 80}]})
    created = await env.slice("nginx", [_ep("10.42.0.5", "web-0")], [{"name": "web", "port": 80}])
    name = f"web-0.nginx.default.svc.{ZONE}"
    await until(lambda: answered(env.port, name), "web-0")
    changed = deep_copy(created)
    changed["endpoints"] = [_ep("10.42.0.99", "web-0")]
    await env.cluster.client.update(env.cluster.resource("discovery.k8s.io", "v1", "endpointslices"), "default",
                                    changed)

    async def moved() -> bool:
        return _data(await ask(env.port, name)) == ["10.42.0.99"]

    await until(moved, "the new address")
    empty = deep_copy(changed)
    empty["endpoints"] = []
    empty["metadata"].pop("resourceVersion")
    await env.cluster.client.update(env.cluster.resource("discovery.k8s.io", "v1", "endpointslices"), "default",
                                    empty)

    async def gone() -> bool:
        return (await ask(env.port, f"nginx.default.svc.{ZONE}")).rcode == wire.NXDOMAIN

    await until(gone, "NXDOMAIN for a headless Service without ready endpoints")


async def test_namespaces_pods_and_the_zone(env: Env) -> None:
    assert (await ask(env.port, f"default.svc.{ZONE}")).rcode == wire.NOERROR
    assert (await ask(env.port, f"nowhere.svc.{ZONE}")).rcode == wire.NXDOMAIN
    assert (await ask(env.port, f"missing.default.svc.{ZONE}")).rcode == wire.NXDOMAIN
    assert _data(await ask(env.port, f"10-42-0-9.default.pod.{ZONE}")) == ["10.42.0.9"]
    assert (await ask(env.port, f"10-42-0-9.nowhere.pod.{ZONE}")).rcode == wire.NXDOMAIN
    assert (await ask(env.port, f"bogus.{ZONE}")).rcode == wire.NXDOMAIN
    assert _data(await ask(env.port, f"dns-version.{ZONE}", wire.TXT)) == [("1.1.0",)]
    soa = await ask(env.port, ZONE, wire.SOA)
    assert [r.rtype for r in soa.answers] == [wire.SOA]


async def test_external_names_forwarding_and_cache(env: Env) -> None:
    await env.service("ext", {"type": "ExternalName", "externalName": "www.example.com"})
    await env.service("alias", {"type": "ExternalName", "externalName": f"kubernetes.default.svc.{ZONE}"})
    ext = await until(lambda: answered(env.port, f"ext.default.svc.{ZONE}"), "the ExternalName Service")
    assert [(r.rtype, r.data) for r in ext.answers] == [(wire.CNAME, "www.example.com"), (wire.A, "192.0.2.7")]
    alias = await ask(env.port, f"alias.default.svc.{ZONE}")
    assert [r.rtype for r in alias.answers] == [wire.CNAME, wire.A] and alias.answers[1].data == "10.43.0.1"
    await env.service("dangling", {"type": "ExternalName", "externalName": f"gone.default.svc.{ZONE}"})
    dangling = await until(lambda: answered(env.port, f"dangling.default.svc.{ZONE}"), "the dangling alias")
    assert (dangling.rcode, [r.rtype for r in dangling.answers], [r.rtype for r in dangling.authority]) == (
        wire.NXDOMAIN, [wire.CNAME], [wire.SOA])
    first = await ask(env.port, "example.org")
    again = await ask(env.port, "Example.ORG")
    assert _data(first) == _data(again) == ["192.0.2.7"]
    assert env.upstream.asked.count("example.org") == 1  # the second came from the cache
    assert first.edns is None  # no OPT record to a client that sent none
    assert (await ask(env.port, "example.org", edns=True)).edns is not None
    assert 0 < again.answers[0].ttl <= 30  # capped at the cache's 30 s
    nx = await ask(env.port, "nx.example.org")
    assert nx.rcode == wire.NXDOMAIN
    await ask(env.port, "nx.example.org")
    assert env.upstream.asked.count("nx.example.org") == 1


async def test_tcp_and_truncation(env: Env) -> None:
    await env.service("many", {"clusterIP": "None", "ports": [{"name": "p", "port": 1}]})
    await env.slice("many", [_ep(f"10.42.1.{i}") for i in range(1, 61)], [{"name": "p", "port": 1}])
    name = f"many.default.svc.{ZONE}"

    async def all_there() -> Message | None:
        msg = await ask(env.port, name, tcp=True)
        return msg if len(msg.answers) == 60 else None

    await until(all_there, "60 endpoints over TCP")
    udp = await ask(env.port, name)
    assert udp.tc and udp.answers == []  # 60 A records do not fit in 512 bytes
    assert len((await ask(env.port, name, edns=True)).answers) == 60  # an EDNS client takes 1232


async def test_kube_dns_service_is_created_and_repaired(env: Env) -> None:
    services = env.cluster.resource("", "v1", "services")
    endpoints = env.cluster.resource("", "v1", "endpoints")
    slices = env.cluster.resource("discovery.k8s.io", "v1", "endpointslices")
    # A slice left by a DNS server on a node that is gone is removed, and leaves the Endpoints.
    await env.cluster.client.create(slices, "kube-system", {
        "metadata": {"name": "kube-dns-gone", "labels": {"kubernetes.io/service-name": "kube-dns",
                                                         "endpointslice.kubernetes.io/managed-by": "dns.nanokube.io"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.42.9.1"], "nodeName": "gone"}],
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]})

    async def endpoints_ready() -> dict[str, Any] | None:
        with contextlib.suppress(Exception):
            return await env.cluster.client.get(endpoints, "kube-system", "kube-dns")
        return None

    async def only_ours() -> dict[str, Any] | None:
        listed = await env.cluster.client.list(slices, "kube-system",
                                               label_selector="kubernetes.io/service-name=kube-dns")
        if [s["metadata"]["name"] for s in listed.items] != ["kube-dns-local"]:
            return None
        ep = await endpoints_ready()
        return ep if ep and [a["ip"] for a in ep.get("subsets", [{}])[0].get("addresses", [])] == ["127.0.0.1"] \
            else None

    ep = await until(only_ours, "the kube-dns Endpoints without the gone node's server")
    svc = await env.cluster.client.get(services, "kube-system", "kube-dns")
    assert svc["spec"]["clusterIP"] == "10.43.0.10" and "selector" not in svc["spec"]
    assert svc["metadata"]["labels"]["k8s-app"] == "kube-dns"
    assert sorted((p["name"], p["port"], p["protocol"], p["targetPort"]) for p in svc["spec"]["ports"]) == [
        ("dns", 53, "UDP", env.port), ("dns-tcp", 53, "TCP", env.port)]
    assert ep["subsets"][0]["addresses"] == [{"ip": "127.0.0.1"}]
    assert ep["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] == "true"
    listed = await env.cluster.client.list(slices, "kube-system", label_selector="kubernetes.io/service-name=kube-dns")
    (own,) = listed.items
    assert own["endpoints"][0]["addresses"] == ["127.0.0.1"] and {p["port"] for p in own["ports"]} == {env.port}
    assert _data(await ask(env.port, f"kube-dns.kube-system.svc.{ZONE}")) == ["10.43.0.10"]
    await env.cluster.client.delete(services, "kube-system", "kube-dns")

    async def recreated() -> bool:
        with contextlib.suppress(Exception):
            again = await env.cluster.client.get(services, "kube-system", "kube-dns")
            return bool(again["metadata"]["uid"] != svc["metadata"]["uid"])
        return False

    await until(recreated, "kube-dns to be recreated")


async def test_dig_reads_the_answers(env: Env) -> None:
    dig = shutil.which("dig")
    assert dig, "dig is missing: install the Debian package bind9-dnsutils (make test does)"
    await env.service("nginx", {"clusterIP": "None", "ports": [{"name": "web", "port": 80}]})
    await env.slice("nginx", [_ep("10.42.0.5", "web-0")], [{"name": "web", "port": 80}])
    await until(lambda: answered(env.port, f"web-0.nginx.default.svc.{ZONE}"), "web-0")

    async def dig_says(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(dig, "@127.0.0.1", "-p", str(env.port), "+time=2", "+tries=1",
                                                    *args, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        return out.decode()

    assert (await dig_says("+short", f"web-0.nginx.default.svc.{ZONE}")).split() == ["10.42.0.5"]
    assert (await dig_says("+short", "+tcp", "SRV", f"_web._tcp.nginx.default.svc.{ZONE}")).split() == [
        "0", "100", "80", f"web-0.nginx.default.svc.{ZONE}."]
    full = await dig_says(f"absent.default.svc.{ZONE}")
    assert "status: NXDOMAIN" in full and "flags: qr aa rd ra" in full and "SOA" in full
