"""The node's Pod bridge: created up front with the gateway address, removed only when asked.

The CNI ``bridge`` plugin would create the bridge on the first Pod's ADD, but the node wants it earlier (the
proxy routes Service traffic through it before any Pod exists) and wants it to survive agent restarts, so
``ensure`` makes it idempotently: the bridge exists, is up, and holds exactly the gateway address of the
current pod CIDR (a node re-registered with another CIDR gets its bridge re-addressed; the plugin itself
refuses to add a second IPv4 address). ``delete`` is for a clean shutdown that was asked to remove it.

The bridge's Pods are masqueraded once for the whole pod CIDR (``ensure_masquerade``), not per Pod by the
plugin's ``ipMasq``: the effect is the plugin's (traffic from a Pod leaving the pod CIDR, multicast aside,
leaves with the node's address), but a Pod's ADD and DEL then run no iptables at all. Per Pod, the plugin
makes a chain and a POSTROUTING jump, each iptables run listing the whole nat table under one lock, which
serialised Pods starting together and slowed every run as rules piled up. The node's rules are a
POSTROUTING jump ``-s <cidr> ! -d <cidr>`` per pod CIDR to a chain ``NK-MASQ-<bridge>`` that masquerades
what is not multicast; they go with the bridge (``delete``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import shlex
from typing import Any

from .base import NetworkError
from .command import CommandError, run

log = logging.getLogger(__name__)

IP = "ip"
IPTABLES = "iptables"
MASQ_CHAIN_PREFIX = "NK-MASQ-"
MULTICAST = "224.0.0.0/4"
MAX_IFNAME = 15
NET_ADDR_SET = "3"  # /sys/class/net/<if>/addr_assign_type: the address was set explicitly


def gateway_of(pod_cidr: str) -> tuple[str, int]:
    """The gateway address (the network's first address) and prefix length of ``pod_cidr``."""
    try:
        network = ipaddress.ip_network(pod_cidr, strict=False)
    except ValueError as e:
        raise NetworkError(f"invalid pod CIDR {pod_cidr!r}: {e}") from e
    if network.num_addresses < 4:
        raise NetworkError(f"pod CIDR {pod_cidr} is too small for a gateway and Pods")
    return str(network.network_address + 1), network.prefixlen


def validate_name(name: str) -> None:
    if not name or len(name) > MAX_IFNAME or "/" in name or any(c.isspace() for c in name):
        raise NetworkError(f"invalid bridge name {name!r} (at most {MAX_IFNAME} characters, no spaces or '/')")


async def _link(name: str) -> dict[str, Any] | None:
    result = await run([IP, "-j", "-d", "link", "show", "dev", name])
    if not result.ok:
        return None
    links = json.loads(result.stdout or b"[]")
    return links[0] if links else None


async def _addresses(name: str, family: str) -> list[str]:
    result = await run([IP, "-j", family, "addr", "show", "dev", name], check=True)
    found: list[str] = []
    for link in json.loads(result.stdout or b"[]"):
        for info in link.get("addr_info", []):
            if info.get("scope") != "link":
                found.append(f"{info['local']}/{info['prefixlen']}")
    return found


async def _pin_mac(name: str, link: dict[str, Any]) -> None:
    """Make the bridge keep its MAC: left alone, Linux gives a bridge the lowest MAC of its ports, so it
    changes as Pods come and go (breaking CNI CHECK, which compares it, and neighbours' ARP caches)."""
    try:
        with open(f"/sys/class/net/{name}/addr_assign_type", encoding="ascii") as f:
            if f.read().strip() == NET_ADDR_SET:
                return
    except OSError:
        return
    await run([IP, "link", "set", "dev", name, "address", str(link["address"])], check=True)


async def exists(name: str) -> bool:
    return await _link(name) is not None


async def ensure(name: str, pod_cidr: str, *, mtu: int = 0) -> str:
    """Make the bridge exist, be up and carry the gateway address; returns that address (with prefix)."""
    validate_name(name)
    gateway, prefix_len = gateway_of(pod_cidr)
    wanted = f"{gateway}/{prefix_len}"
    family = "-6" if ":" in gateway else "-4"
    try:
        link = await _link(name)
        if link is None:
            argv = [IP, "link", "add", "name", name, *(["mtu", str(mtu)] if mtu else []), "type", "bridge"]
            result = await run(argv)
            link = await _link(name)
            if link is None:
                raise NetworkError(f"creating bridge {name}: {result.describe()}")
        kind = link.get("linkinfo", {}).get("info_kind")
        if kind != "bridge":
            raise NetworkError(f"interface {name} exists and is not a bridge (it is a {kind or 'plain'} link)")
        await _pin_mac(name, link)
        for address in await _addresses(name, family):
            if address != wanted:
                log.warning("bridge %s: removing %s, the pod CIDR is now %s", name, address, pod_cidr)
                await run([IP, "addr", "del", address, "dev", name], check=True)
        if wanted not in await _addresses(name, family):
            await run([IP, "addr", "add", wanted, "dev", name], check=True)
        await run([IP, "link", "set", "dev", name, "up"], check=True)
    except CommandError as e:
        raise NetworkError(f"setting up bridge {name}: {e}") from e
    return wanted


async def delete(name: str) -> None:
    """Remove the bridge and its masquerade rules (Pods still attached lose their network). Missing is fine."""
    validate_name(name)
    await delete_masquerade(name)
    if await _link(name) is None:
        return
    result = await run([IP, "link", "delete", "dev", name])
    if not result.ok and await _link(name) is not None:
        raise NetworkError(f"deleting bridge {name}: {result.describe()}")


# -- masquerading ---------------------------------------------------------------------------------------------

def masquerade_chain(name: str) -> str:
    validate_name(name)
    return MASQ_CHAIN_PREFIX + name


def _nat(*args: str) -> list[str]:
    return [IPTABLES, "-w", "-t", "nat", *args]


async def _jumps(chain: str) -> list[list[str]]:
    """The POSTROUTING rules jumping to ``chain``, as ``-A POSTROUTING ...`` word lists."""
    listing = await run(_nat("-S", "POSTROUTING"), check=True)
    rules = [shlex.split(line) for line in listing.stdout.decode().splitlines()]
    return [words for words in rules if words[-2:] == ["-j", chain]]


async def ensure_masquerade(name: str, pod_cidr: str, comment: str) -> None:
    """Masquerade what the Pods of ``pod_cidr`` on bridge ``name`` send outside that CIDR; idempotent. Jumps
    for other CIDRs the bridge had stay (their Pods keep working until they go). ``comment`` tags the rules."""
    chain = masquerade_chain(name)
    cidr = str(ipaddress.ip_network(pod_cidr, strict=False))
    if ":" in cidr:
        raise NetworkError(f"pod CIDR {pod_cidr}: only IPv4 pod CIDRs are masqueraded")
    note = ["-m", "comment", "--comment", comment]
    try:
        await run(_nat("-N", chain))  # fails when it exists: fine
        rule = ["!", "-d", MULTICAST, *note, "-j", "MASQUERADE"]
        if not (await run(_nat("-C", chain, *rule))).ok:
            await run(_nat("-A", chain, *rule), check=True)
        jump = ["-s", cidr, "!", "-d", cidr, *note, "-j", chain]
        if not (await run(_nat("-C", "POSTROUTING", *jump))).ok:
            await run(_nat("-A", "POSTROUTING", *jump), check=True)
    except (CommandError, OSError) as e:
        raise NetworkError(f"masquerading the pods of bridge {name} (needs iptables): {e}") from e


async def delete_masquerade(name: str) -> None:
    """Remove the bridge's masquerade jumps and chain. Missing is fine (so is a missing iptables)."""
    chain = masquerade_chain(name)
    try:
        for words in await _jumps(chain):
            await run(_nat("-D", *words[1:]), check=True)
        await run(_nat("-F", chain))
        await run(_nat("-X", chain))
    except FileNotFoundError:
        return
    except CommandError as e:
        raise NetworkError(f"removing the masquerade rules of bridge {name}: {e}") from e
