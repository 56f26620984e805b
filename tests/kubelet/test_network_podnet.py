"""PodNetwork for real (root, Debian containernetworking-plugins, iproute2, iptables): per-Pod namespaces on a
bridge with host-local IPs, HTTP host↔pod and pod↔pod, teardown that leaves nothing, recovery after a restart.

Each test gets its own bridge, namespace prefix, CNI network name and a 10.244.<x>.0/24 no route on the host
uses; traffic never leaves the host and the test's namespaces. The fixture removes whatever carries the test's
tag (servers, namespaces, links, nat rules) even when the test failed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import secrets
import shlex
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nanokube.kubelet.network import NetworkError, PodNetwork, PodNetworkConfig, PodNetworkInfo
from nanokube.kubelet.network import netns as netns_mod
from nanokube.kubelet.network.records import RecordStore

CNI_DIR = "/usr/lib/cni"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
FETCH = ("import sys, urllib.request as u; sys.stdout.buffer.write("
         "u.build_opener(u.ProxyHandler({})).open(sys.argv[1], timeout=10).read())")


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True).stdout


def require_prerequisites() -> None:
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    if shutil.which("ip") is None:
        missing.append("iproute2 (ip)")
    if shutil.which("iptables") is None:
        missing.append("iptables (the bridge plugin's ipMasq)")
    missing += [f"{CNI_DIR}/{p} (containernetworking-plugins)" for p in ("bridge", "host-local")
                if not os.access(f"{CNI_DIR}/{p}", os.X_OK)]
    if missing:
        pytest.fail("pod network tests need " + ", ".join(missing) +
                    ": run as root after `apt-get install -y containernetworking-plugins iproute2 iptables`")


def unused_cidr() -> str:
    taken = sh("ip", "-o", "-4", "addr") + sh("ip", "-o", "-4", "route", "show", "table", "all")
    for x in random.sample(range(100, 251), 151):
        if f"10.244.{x}." not in taken:
            return f"10.244.{x}.0/24"
    raise AssertionError("no free 10.244.x.0/24 on this host")


def link_names() -> set[str]:
    return {line.split(":")[1].strip().split("@")[0] for line in sh("ip", "-o", "link").splitlines()}


def bridge_ports(bridge: str) -> set[str]:
    return {link["ifname"] for link in json.loads(sh("ip", "-j", "link", "show", "master", bridge) or "[]")}


def nat_rules(tag: str) -> list[str]:
    return [line for line in sh("iptables-save", "-t", "nat").splitlines() if f'name: "{tag}"' in line
            or f'name: \\"{tag}\\"' in line]


def masquerade_rules(env: NetEnv) -> list[str]:
    """The node's masquerade rules for ``env``, without their comments, sorted."""
    found = []
    for line in nat_rules(env.tag):
        words = shlex.split(line)
        if "--comment" in words:
            at = words.index("--comment")
            del words[at - 2:at + 2]  # -m comment --comment TEXT
        found.append(" ".join(words))
    return sorted(found)


class NetEnv:
    def __init__(self, tmp_path: Path) -> None:
        self.tag = "nkt" + secrets.token_hex(3)
        self.cidr = unused_cidr()
        self.state_dir = str(tmp_path / "state")
        self.tmp = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.networks: list[PodNetwork] = []
        self.had_nat = subprocess.run(["nft", "list", "table", "ip", "nat"], capture_output=True).returncode == 0

    def config(self, **overrides: Any) -> PodNetworkConfig:
        settings: dict[str, Any] = {"pod_cidr": self.cidr, "state_dir": self.state_dir, "bridge": self.tag,
                                    "network_name": self.tag, "netns_prefix": self.tag + "-"}
        return PodNetworkConfig(**(settings | overrides))

    async def network(self, **overrides: Any) -> PodNetwork:
        net = PodNetwork(self.config(**overrides))
        self.networks.append(net)
        await net.start()
        return net

    def netns_name(self, info: PodNetworkInfo) -> str:
        return os.path.basename(info.netns_path)

    async def serve(self, info: PodNetworkInfo, body: str, bind: str = "", port: int = 8080) -> None:
        """python -m http.server inside the Pod's namespace, serving ``body`` at /probe; waits until it answers."""
        root = self.tmp / f"www-{info.pod_uid}"
        root.mkdir()
        (root / "probe").write_text(body)
        argv = netns_mod.exec_argv(self.netns_name(info), [sys.executable, "-S", "-m", "http.server", "--bind",
                                                           bind or info.ip, "--directory", str(root), str(port)])
        self.procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(400):
            if await self.fetch_in(info, f"http://{info.ip}:{port}/probe", check=False) == body:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"server in {info.netns_path} never answered")

    async def fetch_in(self, info: PodNetworkInfo | None, url: str, check: bool = True) -> str:
        """GET ``url`` from inside the Pod's namespace (None: from the host)."""
        argv = [sys.executable, "-S", "-c", FETCH, url]
        if info is not None:
            argv = netns_mod.exec_argv(self.netns_name(info), argv)
        proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await proc.communicate()
        if check:
            assert proc.returncode == 0, err.decode()
        return out.decode()

    async def cleanup(self) -> None:
        """Every step runs even if an earlier one failed; the first failure is raised at the end."""
        errors: list[BaseException] = []
        for proc in self.procs:
            proc.kill()
            proc.wait()
        for net in self.networks:
            for info in net.pods():
                try:
                    await net.teardown(info.pod_uid)
                except Exception as e:
                    errors.append(e)
        for name in netns_mod.list_names(self.tag):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        for name in link_names():
            if name.startswith(self.tag):
                subprocess.run(["ip", "link", "delete", "dev", name], capture_output=True)
        self.remove_nat_rules()
        if errors:
            raise errors[0]

    def remove_nat_rules(self) -> None:
        chains = set()
        for line in nat_rules(self.tag):
            words = shlex.split(line)
            if words[0] == "-A":
                subprocess.run(["iptables", "-t", "nat", "-D", *words[1:]], capture_output=True)
                chains.add(words[1]) if words[1].startswith(("CNI-", "NK-MASQ-")) else None
        for chain in chains:
            subprocess.run(["iptables", "-t", "nat", "-X", chain], capture_output=True)
        if not self.had_nat:  # the plugin created an empty nat table for us; drop it if nothing uses it
            listing = json.loads(sh("nft", "-j", "list", "table", "ip", "nat") or '{"nftables": []}')
            if not any("rule" in item for item in listing["nftables"]):
                subprocess.run(["nft", "delete", "table", "ip", "nat"], capture_output=True)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[NetEnv]:
    require_prerequisites()
    environment = NetEnv(tmp_path)
    try:
        yield environment
    finally:
        await environment.cleanup()


async def test_each_pod_gets_its_own_ip_namespace_and_hairpin_port(env: NetEnv) -> None:
    net = await env.network()
    infos = await asyncio.gather(*(net.setup(f"uid-{i}", "default", f"web-{i}") for i in range(4)))
    network = ipaddress.ip_network(env.cidr)
    assert len({i.ip for i in infos}) == 4
    for info in infos:
        assert ipaddress.ip_address(info.ip) in network
        assert info.ip != str(network.network_address + 1)
        assert info.gateway == str(network.network_address + 1) and info.prefix_len == 24
        assert info.netns_path == f"/run/netns/{env.tag}-{info.pod_uid}"
        assert netns_mod.is_mounted(info.netns_path)
        lo = json.loads(sh("ip", "-n", env.netns_name(info), "-j", "link", "show", "lo"))[0]
        assert "UP" in lo["flags"]
        routes = json.loads(sh("ip", "-n", env.netns_name(info), "-j", "route"))
        assert {"dst": "default", "gateway": info.gateway} in [{k: r.get(k) for k in ("dst", "gateway")}
                                                               for r in routes]
    addresses = json.loads(sh("ip", "-j", "-4", "addr", "show", "dev", env.tag))[0]["addr_info"]
    assert [(a["local"], a["prefixlen"]) for a in addresses] == [(infos[0].gateway, 24)]
    ports = bridge_ports(env.tag)
    assert len(ports) == 4
    for port in ports:
        slave = json.loads(sh("ip", "-j", "-d", "link", "show", "dev", port))[0]["linkinfo"]["info_slave_data"]
        assert slave["hairpin"] is True
    # Masquerading is node-wide: a POSTROUTING jump for the pod CIDR and one rule in the bridge's chain.
    assert masquerade_rules(env) == [f"-A NK-MASQ-{env.tag} ! -d 224.0.0.0/4 -j MASQUERADE",
                                     f"-A POSTROUTING -s {env.cidr} ! -d {env.cidr} -j NK-MASQ-{env.tag}"]
    assert not [r for r in nat_rules(env.tag) if "CNI-" in r]  # nothing per Pod
    assert await net.setup("uid-0", "default", "web-0") == infos[0]
    assert await asyncio.gather(net.setup("uid-9", "d", "x"), net.setup("uid-9", "d", "x")) == [net.get("uid-9")] * 2


async def test_replacement_pod_gets_a_new_ip_and_the_old_one_is_released(env: NetEnv) -> None:
    net = await env.network()
    old = await net.setup("uid-old", "default", "web")
    ipam = Path(net.config.ipam_dir) / env.tag
    assert (ipam / old.ip).read_text().startswith("uid-old")
    await net.teardown("uid-old")
    assert not (ipam / old.ip).exists()
    new = await net.setup("uid-new", "default", "web")
    assert new.ip != old.ip
    assert (ipam / new.ip).exists()


async def test_host_to_pod_pod_to_pod_and_localhost_inside_a_pod(env: NetEnv) -> None:
    net = await env.network()
    server = await net.setup("uid-server", "default", "server")
    client = await net.setup("uid-client", "default", "client")
    await env.serve(server, "hello from " + server.ip, bind="0.0.0.0")
    url = f"http://{server.ip}:8080/probe"
    from_host = await asyncio.to_thread(lambda: NO_PROXY.open(url, timeout=10).read().decode())
    assert from_host == "hello from " + server.ip
    assert await env.fetch_in(client, url) == "hello from " + server.ip
    # a second "container" of the server Pod reaches the first over localhost
    assert await env.fetch_in(server, "http://127.0.0.1:8080/probe") == "hello from " + server.ip
    # but the client Pod has its own localhost
    assert await env.fetch_in(client, "http://127.0.0.1:8080/probe", check=False) == ""
    await env.serve(client, "client here")
    assert await env.fetch_in(server, f"http://{client.ip}:8080/probe") == "client here"


async def test_teardown_leaves_nothing_behind(env: NetEnv) -> None:
    before = link_names()
    net = await env.network()
    infos = [await net.setup(f"uid-{i}", "default", f"p{i}") for i in range(2)]
    ports = bridge_ports(env.tag)
    assert len(ports) == 2 and len(nat_rules(env.tag)) == 2
    for info in infos:
        await net.teardown(info.pod_uid)
        await net.teardown(info.pod_uid)  # idempotent
    assert bridge_ports(env.tag) == set()
    assert netns_mod.list_names(env.tag) == []
    assert len(nat_rules(env.tag)) == 2  # the node's, until the bridge goes
    assert sorted(os.listdir(Path(net.config.ipam_dir) / env.tag)) == ["last_reserved_ip.0", "lock"]
    assert os.listdir(net.config.records_dir) == []
    assert net.pods() == []
    await net.shutdown(remove_bridge=True)
    assert nat_rules(env.tag) == []
    after = link_names()
    assert env.tag not in after
    assert not (after - before) & (ports | {env.tag})
    assert not {n for n in after - before if n.startswith(env.tag)}


async def test_shutdown_keeps_the_bridge_and_pods_by_default(env: NetEnv) -> None:
    net = await env.network()
    info = await net.setup("uid-a", "default", "a")
    await env.serve(info, "still here")
    await net.shutdown()
    assert env.tag in link_names()
    url = f"http://{info.ip}:8080/probe"
    assert await asyncio.to_thread(lambda: NO_PROXY.open(url, timeout=10).read().decode()) == "still here"
    assert len(nat_rules(env.tag)) == 2  # a Pod is left: so is its masquerading
    await net.start()  # a restarted agent: the bridge is reused as it is
    assert len(bridge_ports(env.tag)) == 1
    await net.teardown("uid-a")
    await net.shutdown()
    assert nat_rules(env.tag) == [] and env.tag in link_names()  # stopped empty: only the bridge stays


async def test_recover_after_restart_adopts_live_pods_and_cleans_half_made_ones(env: NetEnv) -> None:
    first = await env.network()
    a = await first.setup("uid-a", "default", "a")
    b = await first.setup("uid-b", "other", "b")
    # a setup that crashed after making its namespace and record, and a namespace with no record at all
    crashed = first.netns_name("uid-crashed")
    await netns_mod.create(crashed)
    await RecordStore(first.config.records_dir).write("uid-crashed", {"netnsName": crashed,
                                                                      "netns": netns_mod.path(crashed),
                                                                      "result": None})
    orphan = first.netns_name(str(uuid.uuid4()))  # a Pod's, by its name
    await netns_mod.create(orphan)
    foreign = first.netns_name("lo-unit")  # someone else's under the same prefix: not a Pod uid, left alone
    await netns_mod.create(foreign)

    second = await env.network()
    recovered = await second.recover()
    assert sorted(recovered, key=lambda i: i.pod_uid) == [a, b]
    assert second.get("uid-b") == b and second.get("uid-crashed") is None
    assert netns_mod.list_names(env.tag) == sorted([env.netns_name(a), env.netns_name(b), foreign])
    await netns_mod.delete(foreign)
    assert sorted(os.listdir(second.config.records_dir)) == ["uid-a.json", "uid-b.json"]
    await second.check("uid-a")
    c = await second.setup("uid-c", "default", "c")
    assert c.ip not in (a.ip, b.ip)
    await second.teardown("uid-a")
    assert not netns_mod.exists(env.netns_name(a))


async def test_a_vanished_namespace_fails_check_and_teardown_still_releases_everything(env: NetEnv) -> None:
    net = await env.network()
    info = await net.setup("uid-gone", "default", "gone")
    subprocess.run(["ip", "netns", "delete", env.netns_name(info)], check=True)
    with pytest.raises(NetworkError, match="gone"):
        await net.check("uid-gone")
    await net.teardown("uid-gone")
    assert not (Path(net.config.ipam_dir) / env.tag / info.ip).exists()
    assert len(nat_rules(env.tag)) == 2  # only the node's rules: nothing per Pod was made
    again = await net.setup("uid-gone", "default", "gone")  # setup after a vanished namespace starts over
    assert netns_mod.is_mounted(again.netns_path)


async def test_failed_setup_undoes_itself(env: NetEnv) -> None:
    net = await env.network(pod_cidr=env.cidr.replace("/24", "/30"))  # room for exactly one Pod
    await net.setup("uid-one", "default", "one")
    with pytest.raises(NetworkError, match="no IP addresses available") as info:
        await net.setup("uid-two", "default", "two")
    assert info.value.reason == "FailedCreatePodSandBox"
    assert not netns_mod.exists(net.netns_name("uid-two"))
    assert sorted(os.listdir(net.config.records_dir)) == ["uid-one.json"]
    assert len(bridge_ports(env.tag)) == 1
    await net.teardown("uid-one")
    assert (await net.setup("uid-two", "default", "two")).ip == env.cidr.replace("0/24", "2")


async def test_a_new_pod_cidr_readdresses_the_bridge_and_old_pods_still_tear_down(env: NetEnv) -> None:
    net = await env.network()
    old = await net.setup("uid-old", "default", "old")
    new_cidr = unused_cidr()
    await net.update_pod_cidr(new_cidr)
    addresses = json.loads(sh("ip", "-j", "-4", "addr", "show", "dev", env.tag))[0]["addr_info"]
    assert [f"{a['local']}/{a['prefixlen']}" for a in addresses] == [new_cidr.replace("0/24", "1/24")]
    new = await net.setup("uid-new", "default", "new")
    assert ipaddress.ip_address(new.ip) in ipaddress.ip_network(new_cidr) and net.gateway == new.gateway
    await env.serve(new, "new cidr")
    assert await asyncio.to_thread(lambda: NO_PROXY.open(f"http://{new.ip}:8080/probe", timeout=10).read()) \
        == b"new cidr"
    await net.teardown("uid-old")
    assert not (Path(net.config.ipam_dir) / env.tag / old.ip).exists()
    jumps = [r for r in masquerade_rules(env) if r.startswith("-A POSTROUTING")]
    assert jumps == sorted(f"-A POSTROUTING -s {c} ! -d {c} -j NK-MASQ-{env.tag}" for c in (env.cidr, new_cidr))
