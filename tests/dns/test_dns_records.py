"""Cluster records straight from objects fed to the informer handlers: no sockets, no API server."""

from __future__ import annotations

from typing import Any

from nanokube.dns import wire
from nanokube.dns.records import ClusterRecords

Z = "cluster.local"


def _records() -> ClusterRecords:
    r = ClusterRecords(Z, ttl=5, dns_ip="10.43.0.10")
    for ns in ("default", "kube-system"):
        r.on_namespace("ADDED", {"metadata": {"name": ns}}, None)
    services: list[dict[str, Any]] = [
        {"metadata": {"namespace": "default", "name": "db"},
         "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}},
        {"metadata": {"namespace": "default", "name": "v6"}, "spec": {"clusterIP": "fd00::10", "clusterIPs": ["fd00::10"]}},
        {"metadata": {"namespace": "default", "name": "loop"},
         "spec": {"type": "ExternalName", "externalName": f"gone.default.svc.{Z}"}},
    ]
    for svc in services:
        r.on_service("ADDED", svc, None)
    r.on_slice("ADDED", {"metadata": {"namespace": "default", "name": "db-1",
                                      "labels": {"kubernetes.io/service-name": "db"}},
                         "endpoints": [{"addresses": ["10.42.0.20"], "hostname": "db-0"},
                                       {"addresses": ["10.42.0.21"], "conditions": {"ready": None}}],
                         "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}, None)
    return r


def test_in_zone_is_case_and_dot_insensitive() -> None:
    r = _records()
    assert r.in_zone(f"x.{Z}.") and r.in_zone(Z.upper()) and not r.in_zone("cluster.localx") \
        and not r.in_zone(f"x{Z}")


def test_ready_unset_counts_as_ready_and_reverse_names_endpoints() -> None:
    r = _records()
    assert sorted(str(x.data) for x in r.answer(f"db.default.svc.{Z}", wire.A).records) == ["10.42.0.20",
                                                                                        "10.42.0.21"]
    ptr = r.reverse("20.0.42.10.in-addr.arpa", wire.PTR)
    assert ptr is not None and [x.data for x in ptr.records] == [f"db-0.db.default.svc.{Z}"]
    assert r.reverse("99.0.42.10.in-addr.arpa", wire.PTR) is None  # not ours: forwarded
    v6 = "0.1.0.0." + "0." * 26 + "d.f.ip6.arpa"
    ptr6 = r.reverse(v6, wire.PTR)
    assert ptr6 is not None and [x.data for x in ptr6.records] == [f"v6.default.svc.{Z}"]


def test_ipv6_cluster_ip_is_aaaa_only() -> None:
    r = _records()
    assert r.answer(f"v6.default.svc.{Z}", wire.A).records == []
    assert [x.data for x in r.answer(f"v6.default.svc.{Z}", wire.AAAA).records] == ["fd00::10"]


def test_deleting_a_slice_or_service_forgets_it() -> None:
    r = _records()
    r.on_slice("DELETED", {"metadata": {"namespace": "default", "name": "db-1",
                                        "labels": {"kubernetes.io/service-name": "db"}}}, None)
    assert r.answer(f"db.default.svc.{Z}", wire.A).rcode == wire.NXDOMAIN
    r.on_service("DELETED", {"metadata": {"namespace": "default", "name": "v6"}}, None)
    assert r.answer(f"v6.default.svc.{Z}", wire.AAAA).rcode == wire.NXDOMAIN
    assert r.reverse("0.1.0.0." + "0." * 26 + "d.f.ip6.arpa", wire.PTR) is None


def test_a_slice_relabelled_to_another_service_moves() -> None:
    r = _records()
    r.on_service("ADDED", {"metadata": {"namespace": "default", "name": "other"}, "spec": {"clusterIP": "None"}}, None)
    old = {"metadata": {"namespace": "default", "name": "db-1", "labels": {"kubernetes.io/service-name": "db"}}}
    new = {"metadata": {"namespace": "default", "name": "db-1", "labels": {"kubernetes.io/service-name": "other"}},
           "endpoints": [{"addresses": ["10.42.0.30"]}]}
    r.on_slice("MODIFIED", new, old)
    assert r.answer(f"db.default.svc.{Z}", wire.A).rcode == wire.NXDOMAIN
    assert [x.data for x in r.answer(f"other.default.svc.{Z}", wire.A).records] == ["10.42.0.30"]


def test_ns_dns_and_an_in_zone_cname() -> None:
    r = _records()
    assert [x.data for x in r.answer(f"ns.dns.{Z}", wire.A).records] == ["10.43.0.10"]
    loop = r.answer(f"loop.default.svc.{Z}", wire.A)
    assert [x.rtype for x in loop.records] == [wire.CNAME] and loop.external == ""  # the server follows it
