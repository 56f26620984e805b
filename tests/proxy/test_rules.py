"""Rule generation from Services and EndpointSlices: pure, no kernel."""

from __future__ import annotations

from nanokube.proxy.model import categorize, endpoints_for, service_ports
from nanokube.proxy.rules import NodeContext, Ruleset, build_ruleset, chain_name

from .objects import endpoint, service, slice_

CTX = NodeContext("n1", ("192.0.2.2",), "10.42.0.0/16")


def build(services: list[dict], slices: list[dict], ctx: NodeContext = CTX) -> Ruleset:
    return build_ruleset(services, slices, ctx)


def endpoint_targets(rules: Ruleset, chain: str) -> list[str]:
    """The endpoint chains a dispatching chain can pick (from its numgen vmap or single goto)."""
    last = rules.chains[chain][-1]
    return sorted(word for word in last.replace(",", " ").replace("}", " ").split() if word.startswith("endpoint-"))


def dnat_of(rules: Ruleset, chain: str) -> str:
    return rules.chains[chain][-1].rsplit(" ", 1)[-1]


def test_cluster_ip_balances_randomly_over_ready_endpoints() -> None:
    rules = build([service("web")], [slice_("web", [endpoint("10.42.0.5"), endpoint("10.42.0.6"),
                                                   endpoint("10.42.0.7", ready=False)])])
    target = rules.service_ips["10.43.0.10 . tcp . 80"]
    assert target.startswith("goto service-")
    chain = target.split()[1]
    assert "numgen random mod 2 vmap" in rules.chains[chain][-1]
    picked = endpoint_targets(rules, chain)
    assert sorted(dnat_of(rules, c) for c in picked) == ["10.42.0.5:8080", "10.42.0.6:8080"]
    assert not rules.no_endpoint_services


def test_single_endpoint_is_a_plain_goto_and_dnat_names_the_protocol() -> None:
    svc = service("dns", ports=[{"port": 53, "protocol": "UDP", "name": "dns"}])
    rules = build([svc], [slice_("dns", [endpoint("10.42.0.9")], port=5353, port_name="dns", protocol="UDP")])
    chain = rules.service_ips["10.43.0.10 . udp . 53"].split()[1]
    assert rules.chains[chain][-1].startswith("goto endpoint-")
    ep = rules.chains[chain][-1].split()[1]
    assert rules.chains[ep][-1] == "meta l4proto udp dnat to 10.42.0.9:5353"


def test_slice_ports_match_service_ports_by_name_and_protocol() -> None:
    svc = service("two", ports=[{"name": "http", "port": 80, "protocol": "TCP"},
                                {"name": "dns", "port": 53, "protocol": "UDP"}])
    s = slice_("two", [endpoint("10.42.0.5")])
    s["ports"] = [{"name": "http", "protocol": "TCP", "port": 8080}, {"name": "dns", "protocol": "UDP", "port": 5353},
                  {"name": "http", "protocol": "UDP", "port": 9999}]
    ports = service_ports(svc)
    assert [(p.protocol, p.port) for p in ports] == [("tcp", 80), ("udp", 53)]
    assert [e.port for e in endpoints_for(ports[0], [s])] == [8080]
    assert [e.port for e in endpoints_for(ports[1], [s])] == [5353]


def test_endpoints_from_several_slices_are_merged_and_deduplicated() -> None:
    a = slice_("web", [endpoint("10.42.0.5"), endpoint("10.42.0.6")], name="web-a")
    b = slice_("web", [endpoint("10.42.0.6"), endpoint("10.42.0.7")], name="web-b")
    port = service_ports(service("web"))[0]
    assert [e.ip for e in endpoints_for(port, [a, b])] == ["10.42.0.5", "10.42.0.6", "10.42.0.7"]


def test_ipv6_and_fqdn_slices_are_ignored() -> None:
    port = service_ports(service("web"))[0]
    assert endpoints_for(port, [slice_("web", [endpoint("fd00::5")], address_type="IPv6")]) == []


def test_unset_ready_counts_as_ready() -> None:
    port = service_ports(service("web"))[0]
    eps = endpoints_for(port, [slice_("web", [endpoint("10.42.0.5", ready=None)])])
    assert [e.ip for e in categorize(eps)] == ["10.42.0.5"]


def test_terminating_serving_endpoints_are_used_only_when_none_is_ready() -> None:
    port = service_ports(service("web"))[0]
    old = endpoint("10.42.0.5", ready=False, serving=True, terminating=True)
    gone = endpoint("10.42.0.6", ready=False, serving=False, terminating=True)
    assert [e.ip for e in categorize(endpoints_for(port, [slice_("web", [old, gone])]))] == ["10.42.0.5"]
    fresh = endpoint("10.42.0.7")
    assert [e.ip for e in categorize(endpoints_for(port, [slice_("web", [old, gone, fresh])]))] == ["10.42.0.7"]


def test_no_endpoints_rejects_cluster_ip_and_node_port() -> None:
    svc = service("web", type="NodePort", ports=[{"port": 80, "protocol": "TCP", "nodePort": 30080}])
    for slices in ([], [slice_("web", [endpoint("10.42.0.5", ready=False)])]):
        rules = build([svc], slices)
        assert rules.no_endpoint_services == {"10.43.0.10 . tcp . 80": "goto reject-chain"}
        assert rules.no_endpoint_nodeports == {"tcp . 30080": "goto reject-chain"}
        assert not rules.service_ips and not rules.service_nodeports and not rules.chains


def test_headless_external_name_and_unallocated_services_get_no_rules() -> None:
    services = [service("headless", "None"), service("ext", "", type="ExternalName", externalName="example.com"),
                service("pending", "")]
    slices = [slice_(s["metadata"]["name"], [endpoint("10.42.0.5")]) for s in services]
    assert build(services, slices) == Ruleset(nodeport_ips=("192.0.2.2",))


def test_node_port_enters_through_an_external_chain_that_masquerades() -> None:
    svc = service("web", type="NodePort", ports=[{"port": 80, "protocol": "TCP", "nodePort": 30080}])
    rules = build([svc], [slice_("web", [endpoint("10.42.0.5")])])
    external = rules.service_nodeports["tcp . 30080"].split()[1]
    assert external.startswith("external-")
    assert rules.chains[external] == ("jump mark-for-masquerade", f"goto {chain_name('service', service_ports(svc)[0])}")
    assert rules.nodeport_ips == ("192.0.2.2",)


def test_cluster_ip_services_have_no_node_port_even_if_one_is_set() -> None:
    svc = service("web", ports=[{"port": 80, "protocol": "TCP", "nodePort": 30080}])
    assert not build([svc], [slice_("web", [endpoint("10.42.0.5")])]).service_nodeports


def test_traffic_from_outside_the_pod_range_to_a_cluster_ip_is_masqueraded() -> None:
    rules = build([service("web")], [slice_("web", [endpoint("10.42.0.5")])])
    chain = rules.service_ips["10.43.0.10 . tcp . 80"].split()[1]
    assert rules.chains[chain][0] == "ip daddr 10.43.0.10 ip saddr != 10.42.0.0/16 jump mark-for-masquerade"


def test_hairpin_marks_an_endpoint_reaching_itself() -> None:
    rules = build([service("web")], [slice_("web", [endpoint("10.42.0.5")])])
    ep = next(name for name in rules.chains if name.startswith("endpoint-"))
    assert rules.chains[ep][0] == "ip saddr 10.42.0.5 jump mark-for-masquerade"


def test_session_affinity_checks_recent_clients_first_and_records_them() -> None:
    svc = service("web", sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    rules = build([svc], [slice_("web", [endpoint("10.42.0.5"), endpoint("10.42.0.6")])])
    chain = rules.service_ips["10.43.0.10 . tcp . 80"].split()[1]
    checks = rules.chains[chain][1:3]
    assert all(c.startswith("ip saddr @affinity-") and " goto endpoint-" in c for c in checks)
    assert len(rules.affinity_sets) == 2 and set(rules.affinity_sets.values()) == {60}
    for check in checks:
        affinity, target = check.split()[2][1:], check.split()[4]
        assert f"update @{affinity} {{ ip saddr }}" in rules.chains[target]


def test_session_affinity_defaults_to_three_hours_and_a_new_timeout_is_a_new_set() -> None:
    slices = [slice_("web", [endpoint("10.42.0.5")])]
    default = build([service("web", sessionAffinity="ClientIP")], slices)
    assert list(default.affinity_sets.values()) == [10800]
    other = build([service("web", sessionAffinity="ClientIP",
                           sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}})], slices)
    assert default.affinity_sets.keys().isdisjoint(other.affinity_sets.keys())


def test_internal_traffic_policy_local_uses_only_this_nodes_endpoints() -> None:
    svc = service("web", internalTrafficPolicy="Local")
    rules = build([svc], [slice_("web", [endpoint("10.42.0.5", "n1"), endpoint("10.42.1.5", "n2")])])
    chain = rules.service_ips["10.43.0.10 . tcp . 80"].split()[1]
    assert chain.startswith("local-")
    assert [dnat_of(rules, c) for c in endpoint_targets(rules, chain)] == ["10.42.0.5:8080"]


def test_internal_traffic_policy_local_without_local_endpoints_drops() -> None:
    svc = service("web", internalTrafficPolicy="Local")
    rules = build([svc], [slice_("web", [endpoint("10.42.1.5", "n2")])])
    chain = rules.service_ips["10.43.0.10 . tcp . 80"].split()[1]
    assert rules.chains[chain][-1] == "drop"
    assert not rules.no_endpoint_services  # there are endpoints, just not here: drop, not reject


def test_external_traffic_policy_local_keeps_pod_and_host_traffic_cluster_wide() -> None:
    svc = service("web", type="NodePort", externalTrafficPolicy="Local",
                  ports=[{"port": 80, "protocol": "TCP", "nodePort": 30080}])
    rules = build([svc], [slice_("web", [endpoint("10.42.0.5", "n1"), endpoint("10.42.1.5", "n2")])])
    external = rules.service_nodeports["tcp . 30080"].split()[1]
    port = service_ports(svc)[0]
    cluster, local = chain_name("service", port), chain_name("local", port)
    assert rules.chains[external] == (f"ip saddr 10.42.0.0/16 goto {cluster}",
                                      "fib saddr type local jump mark-for-masquerade",
                                      f"fib saddr type local goto {cluster}", f"goto {local}")
    assert [dnat_of(rules, c) for c in endpoint_targets(rules, local)] == ["10.42.0.5:8080"]
    assert len(endpoint_targets(rules, cluster)) == 2
    # The cluster IP is not affected by the external policy.
    assert rules.service_ips["10.43.0.10 . tcp . 80"] == f"goto {cluster}"


def test_external_ips_and_load_balancer_ingress_go_through_the_external_chain() -> None:
    svc = service("web", type="LoadBalancer", externalIPs=["203.0.113.7"],
                  ports=[{"port": 80, "protocol": "TCP", "nodePort": 30080}])
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.8"}, {"hostname": "lb.example"}]}}
    rules = build([svc], [slice_("web", [endpoint("10.42.0.5")])])
    for ip in ("203.0.113.7", "203.0.113.8"):
        assert rules.service_ips[f"{ip} . tcp . 80"].split()[1].startswith("external-")
    assert rules.service_nodeports["tcp . 30080"].split()[1].startswith("external-")


def test_sctp_is_proxied_and_unknown_protocols_are_not() -> None:
    svc = service("s", ports=[{"port": 9, "protocol": "SCTP"}, {"port": 10, "protocol": "XTP"}])
    rules = build([svc], [slice_("s", [endpoint("10.42.0.5")], protocol="SCTP")])
    assert list(rules.service_ips) == ["10.43.0.10 . sctp . 9"]


def test_slices_of_other_services_and_namespaces_do_not_leak() -> None:
    rules = build([service("web"), service("web", "10.43.0.11", namespace="other")],
                  [slice_("web", [endpoint("10.42.0.5")]), slice_("api", [endpoint("10.42.0.6")])])
    assert "10.43.0.10 . tcp . 80" in rules.service_ips
    assert rules.no_endpoint_services == {"10.43.0.11 . tcp . 80": "goto reject-chain"}
    assert all("10.42.0.6" not in rule for body in rules.chains.values() for rule in body)


def test_chain_names_are_valid_nft_identifiers_and_stable() -> None:
    port = service_ports(service("web"))[0]
    name = chain_name("service", port)
    assert name == chain_name("service", port) and name.startswith("service-") and name.endswith("default/web/tcp/80")
    assert len(name) < 256 and all(c.isalnum() or c in "-_/." for c in name)


def test_building_is_deterministic() -> None:
    services = [service(f"s{i}", f"10.43.0.{i + 20}") for i in range(5)]
    slices = [slice_(f"s{i}", [endpoint(f"10.42.0.{i + 5}"), endpoint(f"10.42.0.{i + 50}")]) for i in range(5)]
    assert build(services, slices) == build(list(reversed(services)), list(reversed(slices)))
