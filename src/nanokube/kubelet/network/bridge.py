"""The node's Pod bridge: created up front with the gateway address, removed only when asked.

The CNI ``bridge`` plugin would create the bridge on the first Pod's ADD, but the node wants it earlier (the
proxy routes Service traffic through it before any Pod exists) and wants it to survive agent restarts, so
``ensure`` makes it idempotently: the bridge exists, is up, and holds exactly the gateway address of the
current pod CIDR (a node re-registered with another CIDR gets its bridge re-addressed; the plugin itself
refuses to add a second IPv4 address). ``delete`` is for a clean shutdown that was asked to remove it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any

from .base import NetworkError
from .command import CommandError, run

log = logging.getLogger(__name__)

IP = "ip"
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
    """Remove the bridge (Pods still attached lose their network). Missing is fine."""
    validate_name(name)
    if await _link(name) is None:
        return
    result = await run([IP, "link", "delete", "dev", name])
    if not result.ok and await _link(name) is not None:
        raise NetworkError(f"deleting bridge {name}: {result.describe()}")
