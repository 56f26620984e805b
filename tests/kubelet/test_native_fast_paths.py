"""The native runtime's shortcuts around external tools, as root: containers started through runc's exec fifo
(and ``runc start`` when that cannot be done), Pod namespaces made in-process by a thread of their own (the
agent's own hostname and namespaces untouched), shims forked from a zygote, unmounting without the mount table."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from native_helpers import Native, require_native

from nanokube.kubelet.network import netns
from nanokube.kubelet.runtime.interface import ContainerState, CreateContainerFailure, StartContainerFailure
from nanokube.kubelet.runtime.rootfs import mount, mounted, unmount
from nanokube.kubelet.runtime.shimctl import ShimZygote, release_init

pytestmark = pytest.mark.timeout(60)


def runc_state(native: Native, cid: str) -> str:
    out = subprocess.run(["runc", "--root", str(native.settings.state_dir / "runc"), "state", cid],
                         capture_output=True, text=True, check=True).stdout
    return str(json.loads(out)["status"])


def own_namespace(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


async def test_start_through_the_exec_fifo_makes_runc_see_it_running(native: Native) -> None:
    sid = await native.pod("fifo")
    cid = await native.run(sid, "c", ["sleep", "30"], start=False)
    assert runc_state(native, cid) == "created"
    fifo = native.settings.state_dir / "runc" / cid / "exec.fifo"
    assert fifo.exists()
    await native.runtime.start_container(cid)
    assert not fifo.exists()
    assert runc_state(native, cid) == "running"
    assert (await native.runtime.container_status(cid)).state is ContainerState.RUNNING
    # Started already: nothing left to release, the caller would fall back to runc start.
    assert not await release_init(native.settings.state_dir / "runc", cid, native.settings.state_dir / "containers" / cid)


async def test_a_container_whose_init_died_fails_to_start_as_runc_says(native: Native) -> None:
    sid = await native.pod("dead")
    cid = await native.run(sid, "c", ["sleep", "30"], start=False)
    bundle = native.settings.state_dir / "containers" / cid
    os.kill(int((bundle / "init.pid").read_text()), signal.SIGKILL)
    with pytest.raises(StartContainerFailure):
        await native.runtime.start_container(cid)
    status = await native.wait_exit(cid)
    assert status.state is ContainerState.EXITED


async def test_release_init_without_a_container_changes_nothing(tmp_path: Path) -> None:
    assert not await release_init(tmp_path / "runc", "missing", tmp_path)


async def test_pod_namespaces_are_made_in_process_and_leave_the_agent_alone(native: Native) -> None:
    before = {kind: own_namespace(kind) for kind in ("net", "ipc", "uts")}
    host = socket.gethostname()
    sid = await native.pod("elsewhere")
    sandbox = native.runtime._sandbox(sid)
    assert {kind: own_namespace(kind) for kind in ("net", "ipc", "uts")} == before
    assert socket.gethostname() == host
    for kind in ("ipc", "uts"):
        assert os.stat(sandbox.dir / "ns" / kind).st_ino != os.stat(f"/proc/self/ns/{kind}").st_ino
    cid = await native.run(sid, "c", ["hostname"])
    await native.wait_exit(cid)
    assert await native.log(cid) == b"elsewhere\n"


async def test_in_process_network_namespace_has_loopback_up() -> None:
    require_native()
    name = f"nkfast-{secrets.token_hex(3)}"
    await netns.prepare(f"{name}-probe")
    try:
        path = await netns.create(name)
        assert netns.is_mounted(path)
        assert os.stat(path).st_ino != os.stat("/proc/self/ns/net").st_ino
        lo = json.loads(subprocess.run(["ip", "-n", name, "-j", "link", "show", "lo"], capture_output=True,
                                       text=True, check=True).stdout)[0]
        assert "UP" in lo["flags"]
        assert await netns.create(name) == path  # a second call reuses it
    finally:
        await netns.delete(name)
    assert not os.path.lexists(f"{netns.NETNS_DIR}/{name}")
    await netns.delete(name)  # missing is fine


async def test_many_namespaces_at_once() -> None:
    require_native()
    names = [f"nkfast-{secrets.token_hex(3)}" for _ in range(8)]
    try:
        paths = await asyncio.gather(*(netns.create(n) for n in names))
        assert len({os.stat(p).st_ino for p in paths}) == len(names)
    finally:
        for name in names:
            await netns.delete(name)


def test_unmount_takes_off_stacked_mounts_and_tolerates_none(tmp_path: Path) -> None:
    require_native()
    target = tmp_path / "m"
    target.mkdir()
    for n in range(2):
        mount("tmpfs", target, "tmpfs", 0, f"size=1m,mode=0755,nr_inodes={100 + n}")
    try:
        assert mounted(target)
        unmount(target)
        assert not mounted(target)
        unmount(target)  # not a mount point: nothing to do
        unmount(tmp_path / "missing")
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


async def test_shims_are_forked_from_one_zygote(native: Native) -> None:
    sid = await native.pod("forked")
    first = await native.run(sid, "a", ["sleep", "30"])
    second = await native.run(sid, "b", ["sleep", "30"])
    shims = [native.runtime._container(cid).shim_pid for cid in (first, second)]
    parents = {int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) for pid in shims}
    assert len(parents) == 1
    zygote = parents.pop()
    assert b"--zygote" in Path(f"/proc/{zygote}/cmdline").read_bytes()
    assert all(os.getsid(pid) == pid for pid in shims)  # each shim leads its own session
    await native.runtime.close()  # the agent goes: the zygote exits, the shims stay
    for _ in range(100):
        if not Path(f"/proc/{zygote}").exists():
            break
        await asyncio.sleep(0.02)
    assert not Path(f"/proc/{zygote}").exists()
    assert all(Path(f"/proc/{pid}").exists() for pid in shims)
    assert runc_state(native, first) == "running"
    await native.new_runtime().recover()  # the next agent re-adopts them (and the fixture removes them)
    assert (await native.runtime.container_status(second)).state is ContainerState.RUNNING


async def test_a_shim_that_cannot_start_reports_instead_of_hanging(tmp_path: Path) -> None:
    require_native()
    zygote = ShimZygote(sys.executable, str(tmp_path))
    try:
        empty = tmp_path / "containers" / "nothing-here"
        empty.mkdir(parents=True)
        with pytest.raises(CreateContainerFailure, match="shim"):
            await zygote.start(empty, 20)  # no shim.conf
        assert zygote._proc is not None
        zygote._proc.kill()  # a zygote that died is started again on the next use
        zygote._proc.wait()
        with pytest.raises(CreateContainerFailure):
            await zygote.start(empty, 20)
        assert zygote._proc.poll() is None
    finally:
        zygote.close()


async def test_a_cancelled_namespace_creation_finishes_before_the_caller_cleans_up() -> None:
    require_native()
    name = f"nkfast-{secrets.token_hex(3)}"
    await netns.prepare(f"{name}-probe")
    task = asyncio.ensure_future(netns.create(name))
    await asyncio.sleep(0)  # the thread is started
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    try:
        # Whatever the thread did is done by now: a delete leaves nothing behind.
        await netns.delete(name)
        assert not os.path.lexists(f"{netns.NETNS_DIR}/{name}")
    finally:
        await netns.delete(name)
