"""Remove the masquerade rules of a Pod whose namespace vanished before its CNI DEL.

The ``bridge`` plugin (``ipMasq: true``) adds, per Pod, a nat chain ``CNI-<24 hex of sha512(name+id)>`` and a
POSTROUTING jump from the Pod's IP, and removes them on DEL, but only after reading the Pod's addresses from
inside its namespace. When the namespace is already gone (deleted by hand, or by a crashed agent half way),
DEL releases the IP and leaves the rules. ``teardown`` removes them the way the plugin would, by the same
names, so nothing of a deleted Pod stays on the host. Each step tolerates "already gone".
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable

from .command import run

IPTABLES = "iptables"
CHAIN_PREFIX = "CNI-"
MAX_CHAIN_LENGTH = 28


def chain_name(network_name: str, container_id: str) -> str:
    digest = hashlib.sha512((network_name + container_id).encode()).hexdigest()
    return CHAIN_PREFIX + digest[: MAX_CHAIN_LENGTH - len(CHAIN_PREFIX)]


def comment(network_name: str, container_id: str) -> str:
    return f'name: "{network_name}" id: "{container_id}"'


async def teardown(network_name: str, container_id: str, ips: Iterable[str], *, timeout: float = 30.0) -> None:
    """Delete the Pod's POSTROUTING jumps and its chain, if iptables is installed at all."""
    if shutil.which(IPTABLES) is None:
        return
    chain = chain_name(network_name, container_id)
    note = comment(network_name, container_id)
    for ip in ips:
        if ":" in ip:
            continue  # IPv6 rules live in ip6tables; nanokube's pod CIDRs are IPv4
        await run([IPTABLES, "-t", "nat", "-D", "POSTROUTING", "-s", ip, "-j", chain, "-m", "comment",
                   "--comment", note], timeout=timeout)
    await run([IPTABLES, "-t", "nat", "-F", chain], timeout=timeout)
    await run([IPTABLES, "-t", "nat", "-X", chain], timeout=timeout)
