"""The per-Pod files the kubelet decides: ``/etc/hosts``, the hostname and the DNS settings behind
``/etc/resolv.conf``.

``PodFiles`` holds the node's DNS settings (``PodFileSettings``: cluster DNS IPs, cluster domain, the node's
resolv.conf) and answers two questions for the pod syncer and the volume manager:

* ``dns_config(pod)``: the runtime ``DNSConfig`` per ``dnsPolicy`` (the kubelet's ``GetPodDNS``):
  ClusterFirst (and ClusterFirstWithHostNet) use the cluster DNS server, the searches
  ``<ns>.svc.<domain> svc.<domain> <domain>`` plus the node's, and ``ndots:5``; ClusterFirst on the host
  network, and Default, use the node's resolv.conf; None starts empty; ``dnsConfig`` is merged in last
  (servers and searches appended without duplicates, options by name), then cut to the resolver's limits.
  The runtime writes it as the container's ``/etc/resolv.conf``.
* ``hosts_mount(pod, ips, pod_dir)``: the kubelet-managed hosts file (localhost lines, each Pod IP with
  ``<hostname>.<subdomain>.<ns>.svc.<domain>`` when a subdomain is set, then ``hostAliases``) written to
  ``<pod_dir>/etc-hosts`` and mounted on ``/etc/hosts``. A host-network Pod gets the node's file, plus its
  aliases when it has any (without aliases the runtime's copy of the node's file is left as it is).

``pod_hostname(pod)`` is the hostname the sandbox's UTS namespace gets (``spec.hostname`` or the Pod name,
63 characters at most).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runtime.interface import DNSConfig, Mount

JSON = dict[str, Any]
MANAGED_HEADER = "# Kubernetes-managed hosts file.\n"
HOST_NETWORK_HEADER = "# Kubernetes-managed hosts file (host network).\n"
LOCALHOST_LINES = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
                   "fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
DEFAULT_OPTIONS = ("ndots:5",)
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
MAX_DOMAIN_LENGTH = 253
SYSTEMD_RESOLV = Path("/run/systemd/resolve/resolv.conf")


def node_resolv_conf(default: Path = Path("/etc/resolv.conf"), upstream: Path = SYSTEMD_RESOLV) -> Path:
    """The node's resolver file for Pods: ``/etc/resolv.conf``, or systemd-resolved's upstream list when the
    former names only a loopback stub (useless from a Pod's network namespace), as kubelets are configured."""
    try:
        servers = parse_resolv_conf(default.read_text())[0]
    except OSError:
        return default
    if servers and all(s.startswith("127.") for s in servers) and upstream.exists():
        return upstream
    return default


@dataclass
class PodFileSettings:
    cluster_dns: tuple[str, ...] = ("10.43.0.10",)  # the kubelet's clusterDNS; empty: ClusterFirst acts as Default
    cluster_domain: str = "cluster.local"
    resolv_conf: Path | None = field(default_factory=node_resolv_conf)  # None: the kubelet's --resolv-conf=""
    hosts_file: Path = Path("/etc/hosts")  # the node's, for host-network Pods


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, searches, options): nameservers accumulate, the last search/options line wins, and
    a search domain's trailing dot is dropped."""
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        fields = line.strip().split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            servers.append(fields[1])
        elif fields[0] == "search":
            searches = [s.removesuffix(".") for s in fields[1:]]
        elif fields[0] == "options":
            options = fields[1:]
    return servers, searches, options


def pod_hostname(pod: JSON) -> str:
    """``spec.hostname`` or the Pod's name, cut to 63 characters without a trailing ``-`` or ``.``."""
    name = str(pod["spec"].get("hostname") or pod["metadata"]["name"])
    return name[:63].rstrip("-.") if len(name) > 63 else name


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def merge_options(existing: Sequence[str], extra: Sequence[JSON]) -> list[str]:
    """Options by name, ``dnsConfig``'s overriding the base's (``name`` or ``name:value``)."""
    merged: dict[str, str] = {}
    for option in existing:
        name, _, val = option.partition(":")
        merged[name] = val
    for entry in extra:
        merged[str(entry.get("name", ""))] = str(entry.get("value") or "")
    return [f"{k}:{v}" if v else k for k, v in merged.items()]


def fit_searches(searches: list[str]) -> list[str]:
    """The resolver's limits: 32 domains, none longer than 253 characters, 2048 characters in all."""
    kept = [s for s in searches[:MAX_SEARCHES] if len(s) <= MAX_DOMAIN_LENGTH]
    while kept and len(" ".join(kept)) > MAX_SEARCH_CHARS:
        kept.pop()
    return kept


class PodFiles:
    def __init__(self, settings: PodFileSettings | None = None) -> None:
        self.settings = settings or PodFileSettings()

    # -- DNS ------------------------------------------------------------------------------------------------
    def host_dns(self) -> DNSConfig:
        path = self.settings.resolv_conf
        if path is None:  # no resolver file: lookups go to the local machine
            return DNSConfig(("127.0.0.1",), (".",), ())
        try:
            servers, searches, options = parse_resolv_conf(path.read_text())
        except OSError:
            return DNSConfig()
        return DNSConfig(tuple(servers), tuple(searches), tuple(options))

    def dns_config(self, pod: JSON) -> DNSConfig:
        """The Pod's resolver settings per ``dnsPolicy`` and ``dnsConfig`` (see the module docstring)."""
        spec = pod["spec"]
        policy = spec.get("dnsPolicy") or "ClusterFirst"
        cluster = policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not spec.get("hostNetwork"))
        if policy == "None":
            base = DNSConfig()
        elif cluster and self.settings.cluster_dns:
            base = DNSConfig(tuple(self.settings.cluster_dns),
                             tuple(self._cluster_searches(pod, self.host_dns().searches)), DEFAULT_OPTIONS)
        else:
            base = self.host_dns()
        servers, searches, options = list(base.servers), list(base.searches), list(base.options)
        extra = spec.get("dnsConfig")
        if extra is not None:
            servers = _unique([*servers, *(extra.get("nameservers") or [])])
            searches = _unique([*searches, *(extra.get("searches") or [])])
            options = merge_options(options, extra.get("options") or [])
        return DNSConfig(tuple(servers[:MAX_NAMESERVERS]), tuple(fit_searches(searches)), tuple(options))

    def _cluster_searches(self, pod: JSON, host_searches: Sequence[str]) -> list[str]:
        domain = self.settings.cluster_domain
        if not domain:
            return list(host_searches)
        namespace = pod["metadata"].get("namespace", "")
        return _unique([f"{namespace}.svc.{domain}", f"svc.{domain}", domain, *host_searches])

    # -- /etc/hosts -------------------------------------------------------------------------------------------
    def hosts_content(self, pod: JSON, ips: Sequence[str]) -> str | None:
        """The Pod's hosts file; None for a host-network Pod without aliases (the node's file serves)."""
        spec = pod["spec"]
        aliases = _alias_lines(spec.get("hostAliases") or [])
        if spec.get("hostNetwork"):
            if not aliases:
                return None
            try:
                node = self.settings.hosts_file.read_text()
            except OSError:
                node = ""
            return HOST_NETWORK_HEADER + node + aliases
        hostname = pod_hostname(pod)
        subdomain = spec.get("subdomain")
        names = hostname
        if subdomain:
            namespace = pod["metadata"].get("namespace", "")
            names = f"{hostname}.{subdomain}.{namespace}.svc.{self.settings.cluster_domain}\t{hostname}"
        entries = "".join(f"{ip}\t{names}\n" for ip in ips)
        return MANAGED_HEADER + LOCALHOST_LINES + entries + aliases

    async def hosts_mount(self, pod: JSON, ips: Sequence[str], pod_dir: Path) -> Mount | None:
        """Write ``<pod_dir>/etc-hosts`` and return its mount on ``/etc/hosts`` (None: nothing to mount)."""
        content = self.hosts_content(pod, ips)
        if content is None:
            return None
        path = pod_dir / "etc-hosts"
        await asyncio.to_thread(_write_file, path, content)
        return Mount("/etc/hosts", str(path))


def _alias_lines(aliases: Sequence[JSON]) -> str:
    if not aliases:
        return ""
    lines = [f"{a.get('ip', '')}\t{name}\n" for a in aliases for name in a.get("hostnames") or []]
    return "\n# Entries added by HostAliases.\n" + "".join(lines)


def _write_file(path: Path, content: str) -> None:
    """Replace the file in one rename, so a running container never reads half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
