"""Answers for the cluster zone, computed per query from Services, EndpointSlices and Namespaces.

Follows the Kubernetes DNS specification (schema 1.1.0) and CoreDNS's kubernetes plugin:

- ``<svc>.<ns>.svc.<zone>``: A/AAAA with the ClusterIP, or one per ready endpoint address for a headless
  Service (NXDOMAIN when it has none); a CNAME to ``spec.externalName`` for ExternalName Services.
- ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` SRV per named port (headless: per ready endpoint, its hostname
  -- or its dashed address -- as target); ``<svc>.<ns>.svc.<zone>`` SRV lists every port.
- ``<hostname>.<svc>.<ns>.svc.<zone>``: the ready endpoints with that hostname (or dashed address).
- ``a-b-c-d.<ns>.pod.<zone>``: A with that address (CoreDNS's ``pods insecure``), if the namespace exists.
- ``dns-version.<zone>`` TXT; SOA and NS at the apex; PTR for ClusterIPs and headless endpoints.

A name that exists without records of the asked type is NODATA (NOERROR, empty); a name that does not exist
is NXDOMAIN. Both carry the zone's SOA, whose minimum is the TTL, so resolvers cache negatives briefly.
``ClusterRecords`` holds no state of its own beyond an index: the informers' handlers feed it objects as
they change, so the next query sees a Pod's new address at once.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .wire import Record, Soa, Srv

JSON = dict[str, Any]
SCHEMA_VERSION = "1.1.0"


@dataclass
class Answer:
    rcode: int = wire.NOERROR
    records: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)
    external: str = ""  # a CNAME target outside the zone that the server resolves upstream


@dataclass(frozen=True)
class Endpoint:
    address: str
    hostname: str  # the endpoint's hostname, else its address with dashes
    ports: tuple[tuple[str, str, int], ...]  # (name, protocol, port)


def _key(obj: JSON) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _dashed(address: str) -> str:
    return address.replace(".", "-").replace(":", "-")


class ClusterRecords:
    def __init__(self, domain: str = "cluster.local", ttl: int = 5, dns_ip: str = "") -> None:
        self.zone = domain.strip(".").lower()
        self.ttl = ttl
        self.dns_ip = dns_ip
        self.services: dict[tuple[str, str], JSON] = {}
        self.slices: dict[tuple[str, str], dict[str, JSON]] = {}  # (namespace, service) -> slices by name
        self.namespaces: set[str] = set()
        self._reverse: dict[str, list[str]] | None = None
        self.serial = int(time.time())

    # -- informer handlers (kind is ADDED, MODIFIED or DELETED) --------------------------------------
    def on_service(self, kind: str, obj: JSON, old: JSON | None) -> None:
        if kind == "DELETED":
            self.services.pop(_key(obj), None)
        else:
            self.services[_key(obj)] = obj
        self._changed()

    def on_slice(self, kind: str, obj: JSON, old: JSON | None) -> None:
        namespace, name = _key(obj)
        for version in (old, obj):
            service = ((version or {}).get("metadata", {}).get("labels") or {}).get("kubernetes.io/service-name")
            if service:
                group = self.slices.get((namespace, service), {})
                group.pop(name, None)
                if not group:
                    self.slices.pop((namespace, service), None)
        service = (obj["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
        if kind != "DELETED" and service:
            self.slices.setdefault((namespace, service), {})[name] = obj
        self._changed()

    def on_namespace(self, kind: str, obj: JSON, old: JSON | None) -> None:
        if kind == "DELETED":
            self.namespaces.discard(obj["metadata"]["name"])
        else:
            self.namespaces.add(obj["metadata"]["name"])

    def _changed(self) -> None:
        self._reverse = None
        self.serial += 1

    # -- lookups ---------------------------------------------------------------------------------------
    def in_zone(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        return name == self.zone or name.endswith("." + self.zone)

    def soa(self) -> Record:
        return Record(self.zone, wire.SOA, self.ttl, Soa(f"ns.dns.{self.zone}", f"hostmaster.{self.zone}",
                                                         self.serial & 0xFFFFFFFF, 7200, 1800, 86400, self.ttl))

    def answer(self, name: str, qtype: int) -> Answer:
        """The answer for ``name`` (in the zone; ``name`` keeps the asker's case for the owner names)."""
        labels = name.lower().rstrip(".")[:-len(self.zone)].rstrip(".").split(".")
        labels = [] if labels == [""] else labels
        if not labels:
            return self._apex(name, qtype)
        if labels == ["dns-version"]:
            return self._records(name, qtype, {wire.TXT: [(SCHEMA_VERSION,)]})
        if labels == ["ns", "dns"] and self.dns_ip:
            return self._records(name, qtype, {wire.A: [self.dns_ip]})
        kind, rest = labels[-1], labels[:-1]
        if kind == "svc":
            return self._svc(name, qtype, rest)
        if kind == "pod":
            return self._pod(name, qtype, rest)
        return Answer(wire.NXDOMAIN)

    def _apex(self, name: str, qtype: int) -> Answer:
        if qtype == wire.SOA:
            return Answer(records=[self.soa()])
        if qtype == wire.NS:
            return Answer(records=[Record(name, wire.NS, self.ttl, f"ns.dns.{self.zone}")])
        return Answer()

    def _records(self, name: str, qtype: int, by_type: dict[int, list[Any]]) -> Answer:
        """The records of ``qtype`` among those the name owns; NODATA when it owns none of that type."""
        wanted = list(by_type) if qtype == wire.ANY else [qtype]
        return Answer(records=[Record(name, t, self.ttl, value) for t in wanted for value in by_type.get(t, [])])

    def _namespace_known(self, namespace: str) -> bool:
        return namespace in self.namespaces

    def _pod(self, name: str, qtype: int, labels: list[str]) -> Answer:
        if not labels:
            return Answer()
        if not self._namespace_known(labels[-1]):
            return Answer(wire.NXDOMAIN)
        if len(labels) == 1:
            return Answer()
        if len(labels) != 2:
            return Answer(wire.NXDOMAIN)
        try:
            address = ipaddress.IPv4Address(labels[0].replace("-", "."))
        except ValueError:
            return Answer(wire.NXDOMAIN)
        return self._records(name, qtype, {wire.A: [str(address)]})

    def _svc(self, name: str, qtype: int, labels: list[str]) -> Answer:
        if not labels:
            return Answer()
        namespace = labels[-1]
        if len(labels) == 1:
            return Answer() if self._namespace_known(namespace) else Answer(wire.NXDOMAIN)
        svc = self.services.get((namespace, labels[-2]))
        if svc is None:
            return Answer(wire.NXDOMAIN)
        if len(labels) == 2:
            return self._service(name, qtype, svc)
        if len(labels) == 3:
            return self._endpoint(name, qtype, svc, labels[0])
        if len(labels) == 4 and labels[0].startswith("_") and labels[1].startswith("_"):
            return self._port(name, qtype, svc, labels[0][1:], labels[1][1:].upper())
        return Answer(wire.NXDOMAIN)

    def _fqdn(self, svc: JSON, host: str = "") -> str:
        namespace, service = _key(svc)
        return f"{host + '.' if host else ''}{service}.{namespace}.svc.{self.zone}"

    def _service(self, name: str, qtype: int, svc: JSON) -> Answer:
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            target = str(spec.get("externalName") or "").rstrip(".")
            if not target:
                return Answer(wire.NXDOMAIN)
            cname = Record(name, wire.CNAME, self.ttl, target)
            if qtype == wire.CNAME:
                return Answer(records=[cname])
            if self.in_zone(target):
                return Answer(records=[cname])  # the server follows it inside the zone
            return Answer(records=[cname], external=target)
        ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"]
        if ips:
            by_type = _addresses(ips)
            ports = [(p.get("name", ""), p.get("protocol", "TCP"), int(p["port"])) for p in spec.get("ports") or []]
            srv = [Srv(0, _weight(len(ports)), port, self._fqdn(svc)) for _, _, port in ports]
            answer = self._records(name, qtype, {**by_type, wire.SRV: srv})
            if qtype == wire.SRV and srv:
                answer.additional = [Record(self._fqdn(svc), t, self.ttl, ip) for t, v in by_type.items() for ip in v]
            return answer
        endpoints = list(self.endpoints(svc))
        if not endpoints:
            return Answer(wire.NXDOMAIN)
        srv = [Srv(0, _weight(len(endpoints)), port, self._fqdn(svc, e.hostname))
               for e in endpoints for _, _, port in e.ports]
        answer = self._records(name, qtype, {**_addresses([e.address for e in endpoints]), wire.SRV: srv})
        if qtype == wire.SRV:
            answer.additional = self._endpoint_addresses(svc, endpoints)
        return answer

    def _endpoint(self, name: str, qtype: int, svc: JSON, host: str) -> Answer:
        matching = [e.address for e in self.endpoints(svc) if e.hostname == host]
        if not matching:
            return Answer(wire.NXDOMAIN)
        return self._records(name, qtype, _addresses(matching))

    def _port(self, name: str, qtype: int, svc: JSON, port_name: str, protocol: str) -> Answer:
        spec = svc.get("spec") or {}
        headless = spec.get("clusterIP") in (None, "", "None")
        if spec.get("type") == "ExternalName":
            return Answer(wire.NXDOMAIN)
        if not headless:
            ports = [int(p["port"]) for p in spec.get("ports") or []
                     if p.get("name") == port_name and p.get("protocol", "TCP") == protocol]
            if not ports:
                return Answer(wire.NXDOMAIN)
            answer = self._records(name, qtype, {wire.SRV: [Srv(0, 100, ports[0], self._fqdn(svc))]})
            if qtype == wire.SRV:
                answer.additional = self._service(self._fqdn(svc), wire.A, svc).records
            return answer
        pairs = [(e, port) for e in self.endpoints(svc) for n, proto, port in e.ports
                 if n == port_name and proto == protocol]
        if not pairs:
            return Answer(wire.NXDOMAIN)
        srv = [Srv(0, _weight(len(pairs)), port, self._fqdn(svc, e.hostname)) for e, port in pairs]
        answer = self._records(name, qtype, {wire.SRV: srv})
        if qtype == wire.SRV:
            answer.additional = self._endpoint_addresses(svc, [e for e, _ in pairs])
        return answer

    def _endpoint_addresses(self, svc: JSON, endpoints: list[Endpoint]) -> list[Record]:
        out = []
        for e in endpoints:
            rtype = wire.AAAA if ":" in e.address else wire.A
            out.append(Record(self._fqdn(svc, e.hostname), rtype, self.ttl, e.address))
        return out

    def endpoints(self, svc: JSON) -> Iterator[Endpoint]:
        """The Service's ready endpoints, one per address, across all its slices."""
        seen: set[str] = set()
        for slice_ in sorted(self.slices.get(_key(svc), {}).values(), key=lambda s: s["metadata"]["name"]):
            ports = tuple((p.get("name") or "", p.get("protocol", "TCP"), int(p["port"]))
                          for p in slice_.get("ports") or [] if p.get("port") is not None)
            for endpoint in slice_.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for address in endpoint.get("addresses") or []:
                    if address in seen:
                        continue
                    seen.add(address)
                    yield Endpoint(address, endpoint.get("hostname") or _dashed(address), ports)

    # -- reverse lookups -------------------------------------------------------------------------------
    def reverse(self, name: str, qtype: int) -> Answer | None:
        """PTR for a ClusterIP or headless endpoint address; None when the address is not the cluster's."""
        address = _reverse_address(name)
        if address is None:
            return None
        if self._reverse is None:
            self._reverse = self._build_reverse()
        names = self._reverse.get(address)
        if not names:
            return None
        return self._records(name, qtype, {wire.PTR: names})

    def _build_reverse(self) -> dict[str, list[str]]:
        table: dict[str, list[str]] = {}
        for svc in self.services.values():
            spec = svc.get("spec") or {}
            ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"]
            for ip in ips:
                table.setdefault(str(ipaddress.ip_address(ip)), []).append(self._fqdn(svc))
            if not ips and spec.get("type") != "ExternalName":
                for e in self.endpoints(svc):
                    table.setdefault(str(ipaddress.ip_address(e.address)), []).append(self._fqdn(svc, e.hostname))
        return table


def _addresses(ips: list[str]) -> dict[int, list[Any]]:
    by_type: dict[int, list[Any]] = {wire.A: [], wire.AAAA: []}
    for ip in ips:
        by_type[wire.AAAA if ":" in ip else wire.A].append(ip)
    return {t: v for t, v in by_type.items() if v}


def _weight(count: int) -> int:
    return max(1, 100 // max(1, count))


def _reverse_address(name: str) -> str | None:
    labels = name.lower().rstrip(".").split(".")
    try:
        if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
            return str(ipaddress.IPv4Address(".".join(reversed(labels[:4]))))
        if labels[-2:] == ["ip6", "arpa"] and len(labels) == 34:
            nibbles = "".join(reversed(labels[:32]))
            return str(ipaddress.IPv6Address(int(nibbles, 16)))
    except ValueError:
        return None
    return None
