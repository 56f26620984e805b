"""Rendering a ``Ruleset`` as an ``nft -f`` script: the whole table, or the difference from the last one.

``full_script`` replaces the table in one transaction (``add``/``delete``/re-create: it works whether or not
a previous run left the table behind). ``update_script`` turns the previous rule set into the next one:
changed chains are flushed and refilled, map and set elements are added and removed one by one, chains and
affinity sets no longer used are deleted last (after everything that referred to them is gone). Either is
one transaction: ``nft -f`` applies all of it or nothing. ``update_script`` returns "" when nothing changed.
Incremental updates keep the kernel-owned contents of the affinity sets (who sticks to which endpoint) and
keep a change to one Service small at thousands of Services.
"""

from __future__ import annotations

from .rules import MASQ_MARK, Ruleset

MAPS = {
    "service-ips": ("ipv4_addr . inet_proto . inet_service : verdict", "service_ips"),
    "service-nodeports": ("inet_proto . inet_service : verdict", "service_nodeports"),
    "no-endpoint-services": ("ipv4_addr . inet_proto . inet_service : verdict", "no_endpoint_services"),
    "no-endpoint-nodeports": ("inet_proto . inet_service : verdict", "no_endpoint_nodeports"),
}


def _skeleton(table: str) -> list[str]:
    """The static part: maps, base chains hooked into netfilter and the helper chains."""
    t = f"ip {table}"
    lines = [f"add set {t} nodeport-ips {{ type ipv4_addr; }}"]
    lines += [f"add map {t} {name} {{ type {spec}; }}" for name, (spec, _) in MAPS.items()]
    lines += [
        f"add chain {t} nat-prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}",
        f"add chain {t} nat-output {{ type nat hook output priority -100; policy accept; }}",
        f"add chain {t} nat-postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}",
        f"add chain {t} filter-input {{ type filter hook input priority -110; policy accept; }}",
        f"add chain {t} filter-forward {{ type filter hook forward priority -110; policy accept; }}",
        f"add chain {t} filter-output {{ type filter hook output priority -110; policy accept; }}",
        f"add chain {t} services",
        f"add chain {t} endpoints-check",
        f"add chain {t} mark-for-masquerade",
        f"add chain {t} masquerading",
        f"add chain {t} reject-chain",
        f"add rule {t} nat-prerouting jump services",
        f"add rule {t} nat-output jump services",
        f"add rule {t} nat-postrouting jump masquerading",
        f"add rule {t} filter-input ct state new jump endpoints-check",
        f"add rule {t} filter-forward ct state new jump endpoints-check",
        f"add rule {t} filter-output ct state new jump endpoints-check",
        f"add rule {t} services ip daddr . meta l4proto . th dport vmap @service-ips",
        f"add rule {t} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
        f"add rule {t} endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
        f"add rule {t} endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports",
        f"add rule {t} mark-for-masquerade meta mark set meta mark | {MASQ_MARK}",
        f"add rule {t} masquerading meta mark & {MASQ_MARK} == 0 return",
        f"add rule {t} masquerading meta mark set meta mark ^ {MASQ_MARK}",
        f"add rule {t} masquerading masquerade fully-random",
        f"add rule {t} reject-chain reject",
    ]
    return lines


def _affinity_set(table: str, name: str, timeout: int) -> str:
    return f"add set ip {table} {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"


def _elements(table: str, verb: str, name: str, items: list[str]) -> list[str]:
    """Elements in batches, so one line stays a reasonable size."""
    return [f"{verb} element ip {table} {name} {{ {', '.join(items[i:i + 500])} }}" for i in range(0, len(items), 500)]


def full_script(table: str, rules: Ruleset) -> str:
    t = f"ip {table}"
    lines = [f"add table {t}", f"delete table {t}", f"add table {t}", *_skeleton(table)]
    for name, timeout in sorted(rules.affinity_sets.items()):
        lines.append(_affinity_set(table, name, timeout))
    lines += [f"add chain {t} {name}" for name in sorted(rules.chains)]
    for name, body in sorted(rules.chains.items()):
        lines += [f"add rule {t} {name} {rule}" for rule in body]
    if rules.nodeport_ips:
        lines += _elements(table, "add", "nodeport-ips", list(rules.nodeport_ips))
    for name, (_, attr) in MAPS.items():
        content: dict[str, str] = getattr(rules, attr)
        lines += _elements(table, "add", name, [f"{k} : {v}" for k, v in sorted(content.items())])
    return "\n".join(lines) + "\n"


def update_script(table: str, old: Ruleset, new: Ruleset) -> str:
    """The transaction that turns ``old`` (what the kernel holds) into ``new``; "" when they are equal."""
    t = f"ip {table}"
    head: list[str] = []  # removals from maps and sets, so the chains they point to can change or go
    body: list[str] = []
    tail: list[str] = []
    for name, (_, attr) in MAPS.items():
        before: dict[str, str] = getattr(old, attr)
        after: dict[str, str] = getattr(new, attr)
        gone = [k for k, v in before.items() if after.get(k) != v]
        added = [f"{k} : {v}" for k, v in after.items() if before.get(k) != v]
        head += _elements(table, "delete", name, sorted(gone))
        tail += _elements(table, "add", name, sorted(added))
    if old.nodeport_ips != new.nodeport_ips:
        gone_ips = sorted(set(old.nodeport_ips) - set(new.nodeport_ips))
        new_ips = sorted(set(new.nodeport_ips) - set(old.nodeport_ips))
        head += _elements(table, "delete", "nodeport-ips", gone_ips)
        tail += _elements(table, "add", "nodeport-ips", new_ips)
    for name, timeout in sorted(new.affinity_sets.items()):
        if name not in old.affinity_sets:
            body.append(_affinity_set(table, name, timeout))
    for name in sorted(new.chains.keys() - old.chains.keys()):
        body.append(f"add chain {t} {name}")
    for name in sorted(old.chains.keys() & new.chains.keys()):
        if old.chains[name] != new.chains[name]:
            head.append(f"flush chain {t} {name}")
            body += [f"add rule {t} {name} {rule}" for rule in new.chains[name]]
    for name in sorted(new.chains.keys() - old.chains.keys()):
        body += [f"add rule {t} {name} {rule}" for rule in new.chains[name]]
    stale = sorted(old.chains.keys() - new.chains.keys())
    head += [f"flush chain {t} {name}" for name in stale]  # their jumps go before the chains do
    tail += [f"delete chain {t} {name}" for name in stale]
    tail += [f"delete set {t} {name}" for name in sorted(old.affinity_sets.keys() - new.affinity_sets.keys())]
    lines = head + body + tail
    return "\n".join(lines) + "\n" if lines else ""
