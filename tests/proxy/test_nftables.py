"""The nft backend against a real kernel, inside network namespaces the test creates (root only)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from nanokube.proxy.libnft import LibNftables
from nanokube.proxy.nftables import NftablesBackend, NftError, Snapshot, run_nft
from nanokube.proxy.rules import NodeContext

from .netns import CLIENT_IP, SERVER_IP, NetPair, net_pair
from .objects import endpoint, service, slice_

TABLE = "nkpxtest"
CTX = NodeContext("n1", (CLIENT_IP,), "10.42.0.0/16")


@pytest.fixture(scope="module")
def pair() -> Iterator[NetPair]:
    with net_pair() as p:
        p.serve("8080=a", "8081=b")
        yield p


def snap(services: list[dict], slices: list[dict]) -> Snapshot:
    by_key: dict[str, list[dict]] = {}
    for s in slices:
        by_key.setdefault(f"default/{s['metadata']['labels']['kubernetes.io/service-name']}", []).append(s)
    return Snapshot({f"default/{s['metadata']['name']}": s for s in services}, by_key, CTX)


def two_ports(svc: str, *ports: int, rv: str = "1") -> list[dict]:
    return [slice_(svc, [endpoint(SERVER_IP)], port=p, name=f"{svc}-{p}", rv=rv) for p in ports]


@pytest.mark.parametrize("runner", ["libnftables", "command"])
async def test_cluster_ip_reaches_every_endpoint_and_follows_changes(pair: NetPair, runner: str) -> None:
    backend = (NftablesBackend(TABLE, netns=f"/run/netns/{pair.client}") if runner == "libnftables"
               else NftablesBackend(TABLE, command=pair.nft()))
    if runner == "libnftables":
        assert isinstance(backend.runner, LibNftables), "libnftables1 is missing (apt-get install nftables)"
    try:
        web = service("web")
        await backend.sync(snap([web], two_ports("web", 8080, 8081)))
        seen = Counter(pair.connect("10.43.0.10", 80, 40))
        assert set(seen) == {"a", "b"}, seen
        await backend.sync(snap([web], two_ports("web", 8081, rv="2")))
        assert set(pair.connect("10.43.0.10", 80, 10)) == {"b"}
        await backend.sync(snap([web], []))
        assert pair.connect("10.43.0.10", 80, 2) == ["refused", "refused"]  # no endpoints: rejected
        await backend.sync(snap([], []))
        assert "service-ips" in pair.table(TABLE) and "chain endpoint-" not in pair.table(TABLE)
    finally:
        await backend.cleanup()
        backend.close()
    assert pair.table(TABLE) == ""


async def test_node_port_answers_on_the_node_address(pair: NetPair) -> None:
    backend = NftablesBackend(TABLE, command=pair.nft())
    try:
        svc = service("np", "10.43.0.20", type="NodePort", ports=[{"port": 80, "protocol": "TCP", "nodePort": 30080}])
        await backend.sync(snap([svc], two_ports("np", 8080)))
        assert pair.connect(CLIENT_IP, 30080, 3) == ["a", "a", "a"]
        await backend.sync(snap([svc], []))
        assert pair.connect(CLIENT_IP, 30080) == ["refused"]
    finally:
        await backend.cleanup()


async def test_session_affinity_sticks_to_one_endpoint(pair: NetPair) -> None:
    backend = NftablesBackend(TABLE, command=pair.nft())
    try:
        svc = service("sticky", "10.43.0.30", sessionAffinity="ClientIP")
        await backend.sync(snap([svc], two_ports("sticky", 8080, 8081)))
        assert len(set(pair.connect("10.43.0.30", 80, 20))) == 1
        # An unrelated change is an incremental update: the client keeps its endpoint.
        first = pair.connect("10.43.0.30", 80)[0]
        await backend.sync(snap([svc, service("other", "10.43.0.31")], two_ports("sticky", 8080, 8081)))
        assert set(pair.connect("10.43.0.30", 80, 10)) == {first}
    finally:
        await backend.cleanup()


async def test_start_replaces_whatever_a_previous_run_left(pair: NetPair) -> None:
    await run_nft(pair.nft(), f"add table ip {TABLE}\nadd chain ip {TABLE} leftover\n"
                              f"add map ip {TABLE} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict; }}\n")
    backend = NftablesBackend(TABLE, command=pair.nft())
    try:
        await backend.sync(snap([service("web")], two_ports("web", 8080)))
        assert "leftover" not in pair.table(TABLE)
        assert pair.connect("10.43.0.10", 80) == ["a"]
    finally:
        await backend.cleanup()


@pytest.mark.parametrize("runner", ["libnftables", "command"])
async def test_a_failed_transaction_is_followed_by_a_full_rebuild(pair: NetPair, runner: str) -> None:
    backend = (NftablesBackend(TABLE, netns=f"/run/netns/{pair.client}") if runner == "libnftables"
               else NftablesBackend(TABLE, command=pair.nft()))
    try:
        web = service("web")
        await backend.sync(snap([web], two_ports("web", 8080)))
        await run_nft(pair.nft(), f"delete table ip {TABLE}\n")  # someone removed our table
        with pytest.raises(NftError):
            await backend.sync(snap([web], two_ports("web", 8081, rv="2")))
        await backend.sync(snap([web], two_ports("web", 8081, rv="2")))
        assert pair.connect("10.43.0.10", 80) == ["b"]
    finally:
        await backend.cleanup()


async def test_verify_notices_a_removed_table(pair: NetPair) -> None:
    backend = NftablesBackend(TABLE, netns=f"/run/netns/{pair.client}")
    try:
        web = service("web")
        await backend.sync(snap([web], two_ports("web", 8080)))
        assert await backend.verify()
        await run_nft(pair.nft(), f"delete table ip {TABLE}\n")
        assert not await backend.verify()
        await backend.sync(snap([web], two_ports("web", 8080)))  # nothing changed, but it is all replaced
        assert pair.connect("10.43.0.10", 80) == ["a"]
    finally:
        await backend.cleanup()
        backend.close()


async def test_internal_traffic_policy_local_keeps_to_this_nodes_endpoints(pair: NetPair) -> None:
    backend = NftablesBackend(TABLE, command=pair.nft())
    try:
        svc = service("loc", "10.43.0.40", internalTrafficPolicy="Local")
        here = slice_("loc", [endpoint(SERVER_IP, "n1")], port=8080, name="loc-a")
        there = slice_("loc", [endpoint(SERVER_IP, "n2")], port=8081, name="loc-b")
        await backend.sync(snap([svc], [here, there]))
        assert set(pair.connect("10.43.0.40", 80, 20)) == {"a"}
    finally:
        await backend.cleanup()
