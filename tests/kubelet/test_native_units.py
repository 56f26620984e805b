"""The native runtime's pure parts, without root: the OCI config, CRI log writing and reading, cgroup layouts
and files, images and users, the records a restarted agent reads back, and the Pod's files."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from nanokube.kubelet.runtime.bundle import BundleSpec, build_config, process_args, process_env
from nanokube.kubelet.runtime.cgroups import Cgroup, CgroupLayout, cpu_weight, detect
from nanokube.kubelet.runtime.crilog import go_rfc3339nano, parse_line, parse_time, read_log
from nanokube.kubelet.runtime.interface import (
    ContainerConfig,
    ContainerMetadata,
    ContainerState,
    ContainerStatus,
    CreateContainerFailure,
    DNSConfig,
    ImageSpec,
    LinuxResources,
    LogOptions,
    Mount,
    PodSandboxConfig,
    PodSandboxMetadata,
    PodSandboxStatus,
    PortMapping,
    RuntimeFailure,
    SandboxState,
)
from nanokube.kubelet.runtime.rootfs import (
    HOST_IMAGE,
    DirectoryImageStore,
    ImageConfig,
    NodeImages,
    is_host_image,
    resolve_user,
)
from nanokube.kubelet.runtime.sandbox import hosts_file, resolv_conf
from nanokube.kubelet.runtime.shim import CriLog
from nanokube.kubelet.runtime.state import Container, Sandbox, process_start_time


def container(**kwargs: object) -> ContainerConfig:
    return ContainerConfig(ContainerMetadata("c"), "img", **kwargs)  # type: ignore[arg-type]


# -- the OCI config ---------------------------------------------------------------------------------------

def spec(**kwargs: object) -> BundleSpec:
    base: dict[str, object] = {"args": ["sh"], "env": ["PATH=/bin"], "rootfs": "/r", "cgroups_path": "/nk/pod1/c1",
                               "ipc_ns": "/s/ns/ipc", "net_ns": "/run/netns/p", "uts_ns": "/s/ns/uts"}
    return BundleSpec(**(base | kwargs))  # type: ignore[arg-type]


def test_namespaces_join_the_pod_and_host_network_shares_the_host() -> None:
    joined = build_config(spec())["linux"]["namespaces"]
    assert joined == [{"type": "pid"}, {"type": "mount"}, {"type": "ipc", "path": "/s/ns/ipc"},
                      {"type": "network", "path": "/run/netns/p"}, {"type": "uts", "path": "/s/ns/uts"}]
    host = build_config(spec(net_ns=None, uts_ns=None))["linux"]["namespaces"]
    assert [n["type"] for n in host] == ["pid", "mount", "ipc"]


def test_mounts_pod_files_volumes_and_masks() -> None:
    config = build_config(spec(pod_files={"/etc/hosts": "/s/hosts", "/etc/resolv.conf": "/s/resolv.conf"},
                               shm="/s/shm", tmpfs=["/tmp"],
                               volumes=[Mount("/etc/hosts", "/v/hosts", readonly=True),
                                        Mount("/data", "/v/data", propagation="rslave")]))
    mounts = {m["destination"]: m for m in config["mounts"]}
    assert [m["destination"] for m in config["mounts"]][:3] == ["/proc", "/dev", "/dev/pts"]
    assert mounts["/etc/hosts"]["source"] == "/v/hosts" and "ro" in mounts["/etc/hosts"]["options"]
    assert mounts["/etc/resolv.conf"]["source"] == "/s/resolv.conf"
    assert mounts["/data"]["options"] == ["rbind", "rslave", "rw"]
    assert mounts["/dev/shm"]["source"] == "/s/shm" and mounts["/tmp"]["type"] == "tmpfs"
    assert mounts["/sys"]["options"][-1] == "ro"
    assert sum(m["destination"] == "/etc/hosts" for m in config["mounts"]) == 1


def test_resources_capabilities_and_process() -> None:
    limits = LinuxResources(cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit_bytes=1 << 26,
                            pids_limit=64)
    config = build_config(spec(resources=limits, swap_accounting=True, tty=True, uid=5, gid=6, cwd="/w"))
    resources = config["linux"]["resources"]
    assert resources["memory"] == {"limit": 1 << 26, "swap": 1 << 26}
    assert resources["cpu"] == {"shares": 512, "quota": 50000, "period": 100000}
    assert resources["pids"] == {"limit": 64} and resources["devices"] == [{"allow": False, "access": "rwm"}]
    assert "swap" not in build_config(spec(resources=limits))["linux"]["resources"]["memory"]
    process = config["process"]
    assert process["terminal"] and process["user"] == {"uid": 5, "gid": 6, "additionalGids": [6]}
    assert process["cwd"] == "/w" and "CAP_NET_BIND_SERVICE" in process["capabilities"]["bounding"]
    assert "CAP_SYS_ADMIN" not in process["capabilities"]["effective"]
    assert config["linux"]["cgroupsPath"] == "/nk/pod1/c1" and "/proc/kcore" in config["linux"]["maskedPaths"]


@pytest.mark.parametrize(("command", "args", "expected"), [
    ([], [], ["/entry", "default"]),
    ([], ["given"], ["/entry", "given"]),
    (["/cmd"], [], ["/cmd"]),
    (["/cmd"], ["a"], ["/cmd", "a"]),
])
def test_process_args_follow_kubernetes(command: list[str], args: list[str], expected: list[str]) -> None:
    image = ImageConfig(entrypoint=("/entry",), cmd=("default",))
    assert process_args(container(command=command, args=args), image) == expected


def test_process_args_need_something_to_run() -> None:
    with pytest.raises(RuntimeFailure, match="no command"):
        process_args(container(), ImageConfig())


def test_process_env_layers_image_hostname_and_container() -> None:
    image = ImageConfig(env=("PATH=/image/bin", "A=image", "B=image"))
    env = process_env(container(envs=[("B", "mine"), ("C", "x=y")]), image, "pod-1")
    assert env == ["PATH=/image/bin", "A=image", "B=mine", "HOSTNAME=pod-1", "C=x=y"]
    assert process_env(container(), ImageConfig(), "")[0].startswith("PATH=/usr/local/sbin")


# -- CRI logs ---------------------------------------------------------------------------------------------

def test_parse_cri_lines_and_times() -> None:
    entry = parse_line(b"2026-11-27T18:00:26.123456789Z stderr P part of a line")
    assert entry is not None and (entry.stream, entry.partial, entry.content) == ("stderr", True, b"part of a line")
    assert parse_line(b"2026-11-27T18:00:26Z stdout F ") is not None
    assert parse_line(b"garbage") is None and parse_line(b"t stdin F x") is None
    assert parse_time("1970-01-01T00:00:01.5Z") == 1.5
    assert parse_time("1970-01-01T01:00:00+01:00") == 0.0
    assert go_rfc3339nano("2026-11-27T18:00:26.120000000Z") == "2026-11-27T18:00:26.12Z"
    assert go_rfc3339nano("2026-11-27T18:00:26.000000000Z") == "2026-11-27T18:00:26Z"


async def collect(path: Path, **options: object) -> bytes:
    async def finished() -> bool:
        return True
    return b"".join([c async for c in read_log(str(path), LogOptions(**options), finished)])  # type: ignore[arg-type]


def test_shim_writer_splits_long_lines(tmp_path: Path) -> None:
    log = CriLog(str(tmp_path / "c" / "0.log"))
    log.feed(b"stdout", b"hel")
    log.feed(b"stdout", b"lo\nwor")
    log.feed(b"stderr", b"x" * 20000 + b"\n")
    log.feed(b"stdout", b"ld")
    log.flush()
    lines = (tmp_path / "c" / "0.log").read_bytes().splitlines()
    tags = [(line.split(b" ")[1], line.split(b" ")[2]) for line in lines]
    assert tags == [(b"stdout", b"F"), (b"stderr", b"P"), (b"stderr", b"F"), (b"stdout", b"F")]
    assert all(len(line.split(b" ", 3)[0]) == 30 for line in lines)
    out = asyncio.run(collect(tmp_path / "c" / "0.log"))
    assert out == b"hello\n" + b"x" * 20000 + b"\nworld\n"


def write_log(path: Path, lines: list[tuple[str, str, str]]) -> None:
    path.write_text("".join(f"2026-01-01T00:00:0{i}.000000000Z {stream} {tag} {text}\n"
                            for i, (stream, tag, text) in enumerate(lines)))


def test_read_log_options(tmp_path: Path) -> None:
    path = tmp_path / "log"
    write_log(path, [("stdout", "F", "one"), ("stdout", "P", "tw"), ("stdout", "F", "o"), ("stderr", "F", "3")])
    assert asyncio.run(collect(path)) == b"one\ntwo\n3\n"
    assert asyncio.run(collect(path, tail_lines=2)) == b"two\n3\n"
    assert asyncio.run(collect(path, tail_lines=0)) == b""
    assert asyncio.run(collect(path, tail_lines=10)) == b"one\ntwo\n3\n"
    assert asyncio.run(collect(path, limit_bytes=6)) == b"one\ntw"
    assert asyncio.run(collect(path, since_time=parse_time("2026-01-01T00:00:02Z"))) == b"o\n3\n"
    assert asyncio.run(collect(path, timestamps=True)).splitlines() == [
        b"2026-01-01T00:00:00Z one", b"2026-01-01T00:00:01Z two", b"2026-01-01T00:00:03Z 3"]
    assert asyncio.run(collect(tmp_path / "missing")) == b""


async def test_follow_reads_until_the_container_is_done(tmp_path: Path) -> None:
    path = tmp_path / "log"
    write_log(path, [("stdout", "F", "first")])
    done = False

    async def finished() -> bool:
        return done

    async def writer() -> None:
        nonlocal done
        await asyncio.sleep(0.05)
        with path.open("a") as f:
            f.write("2026-01-01T00:00:05.000000000Z stdout F second\n")
        await asyncio.sleep(0.05)
        done = True

    task = asyncio.create_task(writer())
    chunks = [c async for c in read_log(str(path), LogOptions(follow=True), finished, poll=0.01)]
    await task
    assert b"".join(chunks) == b"first\nsecond\n"


# -- cgroups ----------------------------------------------------------------------------------------------

HYBRID = """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
UNIFIED = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_detect_layouts() -> None:
    hybrid = detect(HYBRID)
    assert hybrid.version == 1 and hybrid.controller("memory") == Path("/sys/fs/cgroup/memory")
    assert Path("/sys/fs/cgroup/unified") in hybrid.trees and Path("/sys/fs/cgroup/systemd") in hybrid.trees
    unified = detect(UNIFIED)
    assert unified.version == 2 and unified.controller("memory") == Path("/sys/fs/cgroup")
    assert detect().version in (1, 2)
    assert (cpu_weight(2), cpu_weight(1024), cpu_weight(262144)) == (1, 39, 10000)


def test_v1_files(tmp_path: Path) -> None:
    layout = CgroupLayout(1, {n: tmp_path / n for n in ("memory", "cpu", "cpuacct", "pids")},
                          tuple(tmp_path / n for n in ("memory", "cpu", "cpuacct", "pids")))
    cg = Cgroup(layout, "/nk/pod/c")
    cg.create()
    memory = tmp_path / "memory/nk/pod/c"
    (memory / "memory.usage_in_bytes").write_text("1000\n")
    (memory / "memory.stat").write_text("cache 5\ntotal_inactive_file 300\n")
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (tmp_path / "cpuacct/nk/pod/c/cpuacct.usage").write_text("123456\n")
    (tmp_path / "pids/nk/pod/c/cgroup.procs").write_text("7\n8\n")
    stats = cg.stats()
    assert (stats.memory_usage_bytes, stats.memory_working_set_bytes, stats.cpu_usage_ns, stats.oom_kills) == (
        1000, 700, 123456, 2)
    assert cg.pids() == [7, 8] and cg.oom_files() == [str(memory / "memory.oom_control")]
    cg.set_limits(LinuxResources(cpu_quota=20000, cpu_shares=100, memory_limit_bytes=4096, pids_limit=9))
    assert (memory / "memory.limit_in_bytes").read_text() == "4096"
    assert (tmp_path / "cpu/nk/pod/c/cpu.cfs_quota_us").read_text() == "20000"
    assert (tmp_path / "cpu/nk/pod/c/cpu.cfs_period_us").read_text() == "100000"
    assert (tmp_path / "pids/nk/pod/c/pids.max").read_text() == "9"


def test_v2_files(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids io\n")
    layout = CgroupLayout(2, {"": tmp_path}, (tmp_path,))
    cg = Cgroup(layout, "nk/c")
    cg.create()
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    d = tmp_path / "nk/c"
    for name in ("memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max"):
        (d / name).write_text("max\n")
    (d / "memory.current").write_text("2000\n")
    (d / "memory.stat").write_text("inactive_file 500\n")
    (d / "cpu.stat").write_text("usage_usec 7\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    cg.set_limits(LinuxResources(cpu_period=100000, cpu_quota=50000, cpu_shares=1024, memory_limit_bytes=8192,
                                 pids_limit=5))
    assert (d / "cpu.max").read_text() == "50000 100000" and (d / "cpu.weight").read_text() == "39"
    assert (d / "memory.max").read_text() == "8192" and (d / "memory.swap.max").read_text() == "0"
    stats = cg.stats()
    assert (stats.memory_working_set_bytes, stats.cpu_usage_ns, stats.oom_kills) == (1500, 7000, 1)


# -- images and users ---------------------------------------------------------------------------------------

def test_host_image_names() -> None:
    assert all(map(is_host_image, ["host", "nanokube.io/host", "nanokube.io/host:latest", "nanokube.io/host:x"]))
    assert not any(map(is_host_image, ["hostile", "docker.io/library/host", "nanokube.io/hosts"]))


async def test_node_images(tmp_path: Path) -> None:
    store = DirectoryImageStore()
    image = store.add("busybox", tmp_path, ImageConfig(cmd=("sh",)))
    images = NodeImages(store)
    host = images.resolve("host")
    assert (host.name, host.layers, host.host) == (HOST_IMAGE, [Path("/")], True)
    resolved = images.resolve("docker.io/library/busybox:latest")
    assert (resolved.name, resolved.ref, resolved.layers) == (
        "docker.io/library/busybox:latest", image.repo_digests[0], [tmp_path])
    with pytest.raises(CreateContainerFailure):
        images.resolve("nginx")
    assert await images.pull_image(ImageSpec("busybox")) == image.repo_digests[0]
    assert [i.repo_tags for i in await images.list_images()] == [(HOST_IMAGE,), ("docker.io/library/busybox:latest",)]
    await images.remove_image(ImageSpec("busybox"))
    await images.remove_image(ImageSpec("busybox"))
    assert await images.image_status(ImageSpec("busybox")) is None
    assert await images.image_status(ImageSpec("host")) is not None
    with pytest.raises(RuntimeFailure):
        await NodeImages(None).pull_image(ImageSpec("busybox"))


def test_resolve_user(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nweb:x:33:44::/var/www:/bin/false\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nstaff:x:50:\n")
    assert resolve_user(tmp_path, "") == (0, 0)
    assert resolve_user(tmp_path, "web") == (33, 44)
    assert resolve_user(tmp_path, "33") == (33, 44)
    assert resolve_user(tmp_path, "1000:7") == (1000, 0 + 7)
    assert resolve_user(tmp_path, "web:staff") == (33, 50)
    with pytest.raises(RuntimeFailure, match="unable to find user"):
        resolve_user(tmp_path, "nobody")


# -- records and Pod files ----------------------------------------------------------------------------------

def test_sandbox_and_container_records_round_trip(tmp_path: Path) -> None:
    config = PodSandboxConfig(PodSandboxMetadata("p", "ns", "u1", 2), hostname="h", labels={"a": "b"},
                              port_mappings=[PortMapping(80, 8080)], dns=DNSConfig(("10.0.0.10",), ("svc",), ()),
                              log_directory="/l")
    sandbox = Sandbox(config, PodSandboxStatus("s1", config.metadata, SandboxState.READY, 5.0, "10.1.0.2",
                                               labels=config.labels), tmp_path, "/run/netns/x")
    sandbox.save(creating=True)
    loaded = Sandbox.load(tmp_path)
    assert loaded is not None and loaded[1] is True
    assert loaded[0].config == config and loaded[0].status == sandbox.status and loaded[0].netns == "/run/netns/x"
    status = ContainerStatus("c1", "s1", ContainerMetadata("c", 3), ContainerState.RUNNING, 1.0, "img", "ref",
                             started_at=2.0, labels={"x": "y"}, log_path="/l/c/3.log")
    record = Container(status, tmp_path, "/nk/pod/c1", tty=True, shim_pid=os.getpid(),
                       shim_start=process_start_time(os.getpid()))
    record.save()
    back = Container.load(tmp_path)
    assert back is not None and back.status == status and back.tty and back.shim_alive()
    back.apply_exit({"exit_code": 137, "finished_at": 9.0, "oom_killed": True})
    assert (back.status.state, back.status.reason, back.exited.is_set()) == (ContainerState.EXITED, "OOMKilled", True)
    back.apply_exit({"exit_code": 0, "finished_at": 9.0})
    assert back.status.reason == "Completed"
    assert process_start_time(2 ** 22 + 1) == 0


def test_pod_files() -> None:
    config = PodSandboxConfig(PodSandboxMetadata("web-0", "ns", "u"), hostname="web-0")
    hosts = hosts_file(config, "10.42.0.7")
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert hosts.endswith("10.42.0.7\tweb-0\n")
    config.dns = DNSConfig(("10.43.0.10",), ("ns.svc.cluster.local", "svc.cluster.local"), ("ndots:5",))
    assert resolv_conf(config, Path("/nonexistent")) == (
        "nameserver 10.43.0.10\nsearch ns.svc.cluster.local svc.cluster.local\noptions ndots:5\n")
    config.dns = None
    assert resolv_conf(config, Path("/nonexistent")) == ""


def test_resolv_conf_skips_a_loopback_resolver(tmp_path: Path) -> None:
    host, upstream = tmp_path / "resolv.conf", tmp_path / "upstream.conf"
    host.write_text("nameserver 127.0.0.53\noptions edns0\n")
    upstream.write_text("nameserver 192.0.2.1\n")
    config = PodSandboxConfig(PodSandboxMetadata("p", "ns", "u"))
    assert resolv_conf(config, host, upstream) == "nameserver 192.0.2.1\n"
    config.host_network = True
    assert resolv_conf(config, host, upstream) == host.read_text()
    host.write_text("nameserver 192.0.2.53\n")
    config.host_network = False
    assert resolv_conf(config, host, upstream) == "nameserver 192.0.2.53\n"
