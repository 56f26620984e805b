"""Rendering rule sets as nft transactions: full replacement and minimal differences."""

from __future__ import annotations

from nanokube.proxy.nftscript import full_script, update_script
from nanokube.proxy.rules import NodeContext, build_ruleset

from .objects import endpoint, service, slice_

CTX = NodeContext("n1", ("192.0.2.2",))


def test_full_script_replaces_the_table_whatever_was_there() -> None:
    rules = build_ruleset([service("web")], [slice_("web", [endpoint("10.42.0.5")])], CTX)
    lines = full_script("nkt", rules).splitlines()
    assert lines[:3] == ["add table ip nkt", "delete table ip nkt", "add table ip nkt"]
    assert any(line.startswith("add element ip nkt service-ips { 10.43.0.10 . tcp . 80 : goto service-")
               for line in lines)
    assert "add element ip nkt nodeport-ips { 192.0.2.2 }" in lines
    # Chains are declared before any rule or map element refers to them.
    first_rule = next(i for i, line in enumerate(lines) if line.startswith("add rule ip nkt endpoint-"))
    assert all(i < first_rule for i, line in enumerate(lines) if line.startswith("add chain ip nkt endpoint-"))


def test_no_change_is_no_script() -> None:
    rules = build_ruleset([service("web")], [slice_("web", [endpoint("10.42.0.5")])], CTX)
    assert update_script("nkt", rules, rules) == ""


def test_endpoint_change_touches_only_that_service() -> None:
    services = [service("web"), service("api", "10.43.0.11")]
    before = build_ruleset(services, [slice_("web", [endpoint("10.42.0.5")]),
                                      slice_("api", [endpoint("10.42.0.8")])], CTX)
    after = build_ruleset(services, [slice_("web", [endpoint("10.42.0.5"), endpoint("10.42.0.6")]),
                                     slice_("api", [endpoint("10.42.0.8")])], CTX)
    script = update_script("nkt", before, after)
    assert "default/api/" not in script
    assert "add chain ip nkt endpoint-" in script and "10.42.0.6/8080" in script
    assert "flush chain ip nkt service-" in script
    assert "delete" not in script


def test_removed_service_deletes_its_chains_after_unhooking_them() -> None:
    with_web = build_ruleset([service("web")], [slice_("web", [endpoint("10.42.0.5")])], CTX)
    empty = build_ruleset([], [], CTX)
    lines = update_script("nkt", with_web, empty).splitlines()
    unhook = lines.index(next(line for line in lines if line.startswith("delete element ip nkt service-ips")))
    deletes = [i for i, line in enumerate(lines) if line.startswith("delete chain")]
    assert len(deletes) == 2 and all(i > unhook for i in deletes)
    flushes = [i for i, line in enumerate(lines) if line.startswith("flush chain")]
    assert flushes and max(flushes) < min(deletes)


def test_service_losing_its_endpoints_moves_to_the_reject_map() -> None:
    svc = service("web")
    before = build_ruleset([svc], [slice_("web", [endpoint("10.42.0.5")])], CTX)
    after = build_ruleset([svc], [], CTX)
    script = update_script("nkt", before, after)
    assert "delete element ip nkt service-ips { 10.43.0.10 . tcp . 80 }" in script
    assert "add element ip nkt no-endpoint-services { 10.43.0.10 . tcp . 80 : goto reject-chain }" in script


def test_changed_map_value_is_deleted_then_added() -> None:
    before = build_ruleset([service("web")], [slice_("web", [endpoint("10.42.0.5")])], CTX)
    after = build_ruleset([service("web", internalTrafficPolicy="Local")],
                          [slice_("web", [endpoint("10.42.0.5")])], CTX)
    lines = update_script("nkt", before, after).splitlines()
    removed = lines.index("delete element ip nkt service-ips { 10.43.0.10 . tcp . 80 }")
    added = next(i for i, line in enumerate(lines) if line.startswith("add element ip nkt service-ips"))
    assert removed < added and "goto local-" in lines[added]


def test_affinity_sets_are_created_once_and_removed_when_unused() -> None:
    sticky = service("web", sessionAffinity="ClientIP")
    slices = [slice_("web", [endpoint("10.42.0.5")])]
    plain = build_ruleset([service("web")], slices, CTX)
    with_affinity = build_ruleset([sticky], slices, CTX)
    on = update_script("nkt", plain, with_affinity)
    assert on.count("add set ip nkt affinity-") == 1 and "flags dynamic,timeout; timeout 10800s;" in on
    off = update_script("nkt", with_affinity, plain)
    assert off.count("delete set ip nkt affinity-") == 1


def test_node_address_change_updates_the_nodeport_set() -> None:
    before = build_ruleset([], [], CTX)
    after = build_ruleset([], [], NodeContext("n1", ("192.0.2.3",)))
    script = update_script("nkt", before, after)
    assert "delete element ip nkt nodeport-ips { 192.0.2.2 }" in script
    assert "add element ip nkt nodeport-ips { 192.0.2.3 }" in script
