"""Per-Pod /etc/hosts and resolver settings as the kubelet makes them (dnsPolicy, dnsConfig, limits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nanokube.kubelet.podfiles import (
    LOCALHOST_LINES,
    PodFiles,
    PodFileSettings,
    node_resolv_conf,
    parse_resolv_conf,
    pod_hostname,
)

JSON = dict[str, Any]
HOST_RESOLV = "# host\nnameserver 192.0.2.1\nnameserver 192.0.2.2\nsearch corp.example. lab.example\noptions edns0\n"


def _pod(**spec: Any) -> JSON:
    return {"metadata": {"name": "web-0", "namespace": "shop", "uid": "u"}, "spec": spec}


def _files(tmp_path: Path, **settings: Any) -> PodFiles:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(HOST_RESOLV)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost node1\n")
    return PodFiles(PodFileSettings(**{"resolv_conf": resolv, "hosts_file": hosts, **settings}))


def test_parse_resolv_conf() -> None:
    text = HOST_RESOLV + "search last.example\noptions ndots:2 timeout:1\n"
    assert parse_resolv_conf(text) == (["192.0.2.1", "192.0.2.2"], ["last.example"], ["ndots:2", "timeout:1"])


def test_cluster_first(tmp_path: Path) -> None:
    dns = _files(tmp_path).dns_config(_pod())
    assert dns.servers == ("10.43.0.10",)
    assert dns.searches == ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example",
                            "lab.example")
    assert dns.options == ("ndots:5",)
    custom = _files(tmp_path, cluster_dns=("10.96.0.10",), cluster_domain="k8s.test").dns_config(_pod())
    assert custom.servers == ("10.96.0.10",) and custom.searches[:3] == ("shop.svc.k8s.test", "svc.k8s.test",
                                                                         "k8s.test")


def test_host_network_and_default_use_the_nodes_resolver(tmp_path: Path) -> None:
    files = _files(tmp_path)
    host = (("192.0.2.1", "192.0.2.2"), ("corp.example", "lab.example"), ("edns0",))
    for pod in (_pod(dnsPolicy="Default"), _pod(hostNetwork=True), _pod(dnsPolicy="ClusterFirst", hostNetwork=True)):
        dns = files.dns_config(pod)
        assert (dns.servers, dns.searches, dns.options) == host
    with_net = files.dns_config(_pod(dnsPolicy="ClusterFirstWithHostNet", hostNetwork=True))
    assert with_net.servers == ("10.43.0.10",)
    no_cluster_dns = _files(tmp_path, cluster_dns=()).dns_config(_pod())
    assert no_cluster_dns.servers == host[0]


def test_none_and_dns_config_merge(tmp_path: Path) -> None:
    files = _files(tmp_path)
    only = files.dns_config(_pod(dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1"], "searches": ["a.b"],
                                                               "options": [{"name": "ndots", "value": "1"}]}))
    assert (only.servers, only.searches, only.options) == (("1.1.1.1",), ("a.b",), ("ndots:1",))
    merged = files.dns_config(_pod(dnsConfig={
        "nameservers": ["10.43.0.10", "8.8.8.8", "9.9.9.9", "1.1.1.1"],
        "searches": ["svc.cluster.local", "extra.example"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}))
    assert merged.servers == ("10.43.0.10", "8.8.8.8", "9.9.9.9")  # three at most
    assert merged.searches[-1] == "extra.example" and merged.searches.count("svc.cluster.local") == 1
    assert merged.options == ("ndots:2", "edns0")


def test_search_limits(tmp_path: Path) -> None:
    many = [f"d{i}.example" for i in range(40)] + ["x" * 254]
    dns = _files(tmp_path).dns_config(_pod(dnsPolicy="None", dnsConfig={"searches": many}))
    assert len(dns.searches) == 32 and all(len(s) <= 253 for s in dns.searches)
    long = [f"{'y' * 200}{i}.example" for i in range(20)]
    dns = _files(tmp_path).dns_config(_pod(dnsPolicy="None", dnsConfig={"searches": long}))
    assert len(" ".join(dns.searches)) <= 2048 and dns.searches == tuple(long[:len(dns.searches)])


def test_managed_hosts_file(tmp_path: Path) -> None:
    files = _files(tmp_path)
    plain = files.hosts_content(_pod(), ["10.42.0.5"])
    assert plain == "# Kubernetes-managed hosts file.\n" + LOCALHOST_LINES + "10.42.0.5\tweb-0\n"
    full = files.hosts_content(_pod(hostname="db", subdomain="dbs", hostAliases=[
        {"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}]), ["10.42.0.5"])
    assert full is not None
    assert "10.42.0.5\tdb.dbs.shop.svc.cluster.local\tdb\n" in full
    assert full.endswith("\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\n10.1.2.3\tbar.local\n")
    assert files.hosts_content(_pod(hostNetwork=True), ["192.0.2.9"]) is None
    host = files.hosts_content(_pod(hostNetwork=True, hostAliases=[{"ip": "10.1.2.3", "hostnames": ["a"]}]), [])
    assert host == ("# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost node1\n"
                    "\n# Entries added by HostAliases.\n10.1.2.3\ta\n")


async def test_hosts_mount_is_written_under_the_pod_dir(tmp_path: Path) -> None:
    mount = await _files(tmp_path).hosts_mount(_pod(), ["10.42.0.7"], tmp_path / "pod")
    assert mount is not None and mount.container_path == "/etc/hosts" and not mount.readonly
    assert Path(mount.host_path).parent == tmp_path / "pod"
    assert Path(mount.host_path).read_text().endswith("10.42.0.7\tweb-0\n")


def test_hostname_and_node_resolver_choice(tmp_path: Path) -> None:
    assert pod_hostname(_pod()) == "web-0" and pod_hostname(_pod(hostname="h")) == "h"
    long = {"metadata": {"name": "a" * 62 + "-b"}, "spec": {}}
    assert pod_hostname(long) == "a" * 62
    stub, upstream = tmp_path / "stub", tmp_path / "upstream"
    stub.write_text("nameserver 127.0.0.53\n")
    assert node_resolv_conf(stub, upstream) == stub  # no upstream file: kept
    upstream.write_text("nameserver 192.0.2.1\n")
    assert node_resolv_conf(stub, upstream) == upstream
    stub.write_text("nameserver 192.0.2.53\n")
    assert node_resolv_conf(stub, upstream) == stub
