"""The cross-node route plan: who is a peer, host-gw or VXLAN, and the commands a change takes."""

from __future__ import annotations

from typing import Any

from nanokube.kubelet.network import routes
from nanokube.kubelet.network.routes import Peer, RoutePlan


def node(name: str, cidr: str, ip: str, runtime: str = "native://runc") -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr} if cidr else {},
            "status": {"addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}],
                       "nodeInfo": {"containerRuntimeVersion": runtime}}}


def test_peers_are_other_native_nodes_with_a_cidr_in_the_cluster_range() -> None:
    nodes = [node("me", "10.42.0.0/24", "192.168.1.1"), node("b", "10.42.2.0/24", "192.168.1.2"),
             node("a", "10.42.1.0/24", "192.168.1.3"), node("sim", "10.42.9.0/24", "10.0.0.9", "fake://0.1.0"),
             node("new", "", "192.168.1.4"), node("odd", "172.16.0.0/24", "192.168.1.5"),
             node("noaddr", "10.42.7.0/24", "")]
    found = routes.peers(nodes, "me", "10.42.0.0/16")
    assert found == [Peer("a", "10.42.1.0/24", "192.168.1.3"), Peer("b", "10.42.2.0/24", "192.168.1.2")]
    assert {p.name for p in routes.peers(nodes, "me")} == {"a", "b", "odd"}


def test_vtep_address_and_mac_derive_from_the_pod_cidr() -> None:
    assert routes.vtep_ip("10.42.3.0/24") == "10.42.3.0"
    assert routes.vtep_mac("10.42.3.0/24") == "0e:6b:0a:2a:03:00"
    assert routes.vtep_mac("10.42.3.0/24") != routes.vtep_mac("10.42.4.0/24")


def test_plan_splits_directly_connected_from_routed_peers() -> None:
    near, far = Peer("near", "10.42.1.0/24", "192.168.1.2"), Peer("far", "10.42.2.0/24", "172.20.0.7")
    plan = routes.plan([near, far], lambda ip: ip.startswith("192.168.1."), device="vx", local_address="192.168.1.1",
                       local_pod_cidr="10.42.0.0/24")
    assert plan.host_gw == (near,)
    assert plan.vxlan == (far,)
    assert plan.device == routes.VxlanDevice("vx", "192.168.1.1", "10.42.0.0/24")
    only_near = routes.plan([near], lambda ip: True, device="vx", local_address="192.168.1.1",
                            local_pod_cidr="10.42.0.0/24")
    assert only_near.device is None and only_near.vxlan == ()


def test_plan_leaves_out_conflicting_claims_and_our_own_cidr() -> None:
    a, b = Peer("a", "10.42.1.0/24", "192.168.1.2"), Peer("b", "10.42.1.0/24", "192.168.1.3")
    mine = Peer("stale-me", "10.42.0.0/24", "192.168.1.4")
    plan = routes.plan([a, b, mine], lambda ip: True, device="vx", local_address="192.168.1.1",
                       local_pod_cidr="10.42.0.0/24")
    assert plan == RoutePlan()


def _lines(commands: routes.Commands) -> list[str]:
    return [" ".join(argv) for argv, _ in commands.steps]


def test_host_gw_routes_come_and_go() -> None:
    a, b = Peer("a", "10.42.1.0/24", "192.168.1.2"), Peer("b", "10.42.2.0/24", "192.168.1.3")
    first = RoutePlan(host_gw=(a,))
    assert _lines(routes.diff(RoutePlan(), first)) == ["ip route replace 10.42.1.0/24 via 192.168.1.2"]
    moved = Peer("a", "10.42.1.0/24", "192.168.1.9")
    second = RoutePlan(host_gw=(moved, b))
    assert _lines(routes.diff(first, second)) == ["ip route del 10.42.1.0/24 via 192.168.1.2",
                                                  "ip route replace 10.42.1.0/24 via 192.168.1.9",
                                                  "ip route replace 10.42.2.0/24 via 192.168.1.3"]
    assert routes.diff(second, second).steps == []
    assert _lines(routes.teardown(second)) == ["ip route del 10.42.1.0/24 via 192.168.1.9",
                                               "ip route del 10.42.2.0/24 via 192.168.1.3"]


def test_vxlan_device_fdb_neighbour_and_route() -> None:
    dev = routes.VxlanDevice("vx", "192.168.1.1", "10.42.0.0/24")
    far = Peer("far", "10.42.2.0/24", "172.20.0.7")
    plan = RoutePlan(vxlan=(far,), device=dev)
    lines = _lines(routes.diff(RoutePlan(), plan))
    assert lines == [
        "ip link del vx",
        "ip link add vx address 0e:6b:0a:2a:00:00 type vxlan id 1 local 192.168.1.1 dstport 8472 nolearning",
        "ip addr replace 10.42.0.0/32 dev vx",
        "ip link set vx up",
        "bridge fdb replace 0e:6b:0a:2a:02:00 dev vx dst 172.20.0.7",
        "ip neigh replace 10.42.2.0 lladdr 0e:6b:0a:2a:02:00 dev vx nud permanent",
        "ip route replace 10.42.2.0/24 via 10.42.2.0 dev vx onlink",
    ]
    # Only the first step (a leftover device) may fail.
    assert [tolerant for _, tolerant in routes.diff(RoutePlan(), plan).steps] == [True] + [False] * 6
    other = Peer("other", "10.42.3.0/24", "172.20.0.8")
    grown = RoutePlan(vxlan=(far, other), device=dev)
    assert _lines(routes.diff(plan, grown)) == [
        "bridge fdb replace 0e:6b:0a:2a:03:00 dev vx dst 172.20.0.8",
        "ip neigh replace 10.42.3.0 lladdr 0e:6b:0a:2a:03:00 dev vx nud permanent",
        "ip route replace 10.42.3.0/24 via 10.42.3.0 dev vx onlink"]
    assert _lines(routes.diff(grown, plan)) == ["ip route del 10.42.3.0/24 via 10.42.3.0 dev vx",
                                                "ip neigh del 10.42.3.0 dev vx",
                                                "bridge fdb del 0e:6b:0a:2a:03:00 dev vx dst 172.20.0.8"]
    # The last tunnelled peer gone: the device goes, and its entries with it.
    assert _lines(routes.teardown(grown)) == ["ip link del vx"]


def test_masquerade_exemption_is_specific_to_the_node() -> None:
    rule = routes.masquerade_exemption("10.42.5.0/24", "10.42.0.0/16")
    assert rule[:4] == ["-s", "10.42.5.0/24", "-d", "10.42.0.0/16"] and rule[-2:] == ["-j", "RETURN"]
    assert "10.42.5.0/24" in rule[rule.index("--comment") + 1]
