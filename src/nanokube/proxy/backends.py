"""Which proxy backend a node runs: nftables where this process can program it, the userspace proxy elsewhere.

``choose_backend`` is what ``cmd`` calls. nftables needs root and libnftables or the ``nft`` command; the
userspace proxy is taken when they are missing or when asked for (the ``process`` runtime, whose Pods are
host processes on 127.x addresses): as root it serves cluster IPs on ``lo`` (vip mode; node ports on all
addresses), without root on their 127.243.x.y images (loopback mode, see ``userspace``; node ports on
127.0.0.1 only). The returned line says which, for the log.
"""

from __future__ import annotations

import os

from .libnft import nft_available
from .nftables import NftablesBackend
from .proxier import Backend
from .userspace import UserspaceBackend, UserspaceSettings


def choose_backend(table: str = "nanokube", service_cidr: str = "10.43.0.0/16", *,
                   userspace: bool = False) -> tuple[Backend, str]:
    ok, why = nft_available()
    if ok and not userspace:
        return NftablesBackend(table), f"nftables table ip {table}"
    reason = "asked for" if userspace else why
    if os.geteuid() == 0:
        settings = UserspaceSettings(mode="vip", device="lo", service_cidr=service_cidr)
        return UserspaceBackend(settings), f"userspace ({reason}): cluster IPs served on lo"
    settings = UserspaceSettings(mode="loopback", service_cidr=service_cidr, node_port_host="127.0.0.1")
    return UserspaceBackend(settings), (f"userspace ({reason}): cluster IPs NOT routed; each served at its "
                                        f"image in {settings.loopback_cidr} (10.43.0.10 -> 127.243.0.10)")
