"""The process runtime with real host processes: no root needed. Each test owns a state dir and a 127.x range
(from tmp_path), and checks that no process of its containers is left behind."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nanokube.kubelet.network.loopback import LoopbackNetwork
from nanokube.kubelet.runtime.interface import (
    ContainerConfig,
    ContainerEvent,
    ContainerMetadata,
    ContainerState,
    CreateContainerFailure,
    EventType,
    ImageSpec,
    LogOptions,
    PodSandboxConfig,
    PodSandboxMetadata,
    SandboxState,
    StartContainerFailure,
)
from nanokube.kubelet.runtime.process import ProcessRuntime, ProcessSettings

HOST = "nanokube.io/host"
PY = sys.executable


class Node:
    def __init__(self, state: Path, cidr: str) -> None:
        self.state, self.cidr = state, cidr
        self.events: list[ContainerEvent] = []
        self.runtime = self.new_runtime()
        self.pids: list[int] = []  # every container process started, checked gone at the end

    def new_runtime(self) -> ProcessRuntime:
        self.network = LoopbackNetwork(self.cidr, str(self.state))
        self.runtime = ProcessRuntime(ProcessSettings(self.state, spare_shim=False), self.network)
        self.runtime.subscribe(self.events.append)
        return self.runtime

    async def pod(self, name: str, **kwargs: object) -> str:
        uid = f"{name}-{secrets.token_hex(4)}"
        config = PodSandboxConfig(PodSandboxMetadata(name, "default", uid), hostname=name,
                                  log_directory=f"/var/log/pods/default_{name}_{uid}", **kwargs)  # type: ignore[arg-type]
        return await self.runtime.run_pod_sandbox(config)

    async def run(self, sid: str, name: str, command: list[str], *, image: str = HOST, start: bool = True,
                  **kwargs: object) -> str:
        config = ContainerConfig(ContainerMetadata(name), image, command=command, **kwargs)  # type: ignore[arg-type]
        status = await self.runtime.pod_sandbox_status(sid)
        cid = await self.runtime.create_container(sid, config, PodSandboxConfig(status.metadata))
        if start:
            await self.runtime.start_container(cid)
            c = self.runtime._containers[cid]
            self.pids.append(self.runtime.init_pid(c))
        return cid

    async def wait_state(self, cid: str, state: ContainerState, timeout: float = 10) -> None:
        for _ in range(int(timeout / 0.02)):
            if (await self.runtime.container_status(cid)).state is state:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"container never became {state}")

    async def log(self, cid: str, **options: object) -> bytes:
        return b"".join([c async for c in self.runtime.logs(cid, LogOptions(**options))])  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    cidr = f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}.0/24"
    n = Node(tmp_path / "state", cidr)
    yield n
    for sandbox in await n.runtime.list_pod_sandboxes():
        await n.runtime.remove_pod_sandbox(sandbox.id)
    await n.runtime.close()
    for _ in range(100):
        if not any(alive(p) for p in n.pids if p):
            break
        await asyncio.sleep(0.05)
    assert not [p for p in n.pids if p and alive(p)], "container processes left running"


async def test_runs_a_process_with_env_cwd_and_logs(node: Node, tmp_path: Path) -> None:
    sid = await node.pod("web")
    cid = await node.run(sid, "c", ["sh", "-c", 'echo "$GREETING from $(pwd) as $HOSTNAME"; echo oops >&2; exit 3'],
                         envs=[("GREETING", "hello")], working_dir=str(tmp_path))
    await node.wait_state(cid, ContainerState.EXITED)
    status = await node.runtime.container_status(cid)
    assert (status.exit_code, status.reason) == (3, "Error")
    assert status.image == "nanokube.io/host:latest"
    assert await node.log(cid) == f"hello from {tmp_path} as web\noops\n".encode()
    kinds = [e.type for e in node.events if e.container_id == cid]
    assert kinds == [EventType.CREATED, EventType.STARTED, EventType.STOPPED]


async def test_pods_get_their_own_loopback_addresses(node: Node) -> None:
    a, b = await node.pod("a"), await node.pod("b")
    ip_a = (await node.runtime.pod_sandbox_status(a)).ip
    ip_b = (await node.runtime.pod_sandbox_status(b)).ip
    assert ip_a != ip_b and ip_a.startswith("127.") and ip_b.startswith("127.")
    port = free_port()
    server = [PY, "-c", "import socket,sys;s=socket.socket();s.bind((sys.argv[1],int(sys.argv[2])));s.listen();"
                        "c,_=s.accept();c.sendall(sys.argv[1].encode());c.close()"]
    for sid, ip in ((a, ip_a), (b, ip_b)):
        await node.run(sid, "srv", [*server, ip, str(port)])
    for sid, ip in ((a, ip_a), (b, ip_b)):
        stream = await eventually_connect(node, sid, port)
        assert await stream.read(100) == ip.encode()
        await stream.close()


async def eventually_connect(node: Node, sid: str, port: int):  # type: ignore[no-untyped-def]
    for _ in range(200):
        try:
            return await node.runtime.port_forward(sid, port)
        except Exception:
            await asyncio.sleep(0.02)
    raise AssertionError("nothing listened")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_stop_sends_sigterm_then_kills_the_group(node: Node) -> None:
    sid = await node.pod("stop")
    graceful = await node.run(sid, "graceful", ["sh", "-c", "trap 'echo bye; exit 0' TERM; sleep 30 & wait"])
    stubborn = await node.run(sid, "stubborn", ["sh", "-c", "trap '' TERM; sleep 30 & sleep 30 & wait"])
    await asyncio.sleep(0.3)  # let the shells install their traps
    await node.runtime.stop_container(graceful, 10)
    status = await node.runtime.container_status(graceful)
    assert (status.exit_code, status.reason) == (0, "Completed")
    assert b"bye" in await node.log(graceful)
    pid = node.runtime.init_pid(node.runtime._containers[stubborn])
    await node.runtime.stop_container(stubborn, 0.3)
    status = await node.runtime.container_status(stubborn)
    assert status.exit_code == 128 + signal.SIGKILL
    await asyncio.sleep(0.1)
    assert not group_members(pid), "the container's background processes survived"


def group_members(pgid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(name))
    return found


async def test_a_finished_process_takes_its_background_children_along(node: Node) -> None:
    sid = await node.pod("orphans")
    cid = await node.run(sid, "c", ["sh", "-c", "setsid sleep 60 & sleep 60 & echo started; exit 0"])
    await node.wait_state(cid, ContainerState.EXITED)
    assert (await node.runtime.container_status(cid)).exit_code == 0
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and "sleep\x0060" in read_cmdline(p)
                 and str(os.getpid()) in read_environ_marker(p)]
    assert not leftovers


def read_cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def read_environ_marker(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return ""


async def test_exec_runs_in_the_containers_env_and_cwd(node: Node, tmp_path: Path) -> None:
    sid = await node.pod("exec")
    cid = await node.run(sid, "c", ["sleep", "30"], envs=[("WHO", "container")], working_dir=str(tmp_path))
    result = await node.runtime.exec_sync(cid, ["sh", "-c", 'echo "$WHO $(pwd)"; exit 4'])
    assert (result.exit_code, result.stdout) == (4, f"container {tmp_path}\n".encode())
    session = await node.runtime.exec(cid, ["cat"], stdin=True, tty=False)
    await session.write_stdin(b"round trip")
    await session.close_stdin()
    out = b"".join([data async for _, data in session.output()])
    assert out == b"round trip" and await session.wait() == 0
    with pytest.raises(Exception, match="timed out"):
        await node.runtime.exec_sync(cid, ["sleep", "30"], timeout=0.2)
    missing = node.runtime.exec_sync(cid, ["no-such-program-here"])
    with pytest.raises(Exception, match="not found"):
        await missing


async def test_tty_exec_has_a_controlling_terminal(node: Node) -> None:
    sid = await node.pod("tty")
    cid = await node.run(sid, "c", ["sleep", "30"])
    session = await node.runtime.exec(cid, ["sh", "-c", "tty >/dev/null && echo is-a-tty; exit 5"], stdin=True,
                                      tty=True)
    out = b"".join([data async for _, data in session.output()])
    assert b"is-a-tty" in out and await session.wait() == 5


async def test_attach_round_trips_stdin(node: Node) -> None:
    sid = await node.pod("attach")
    cid = await node.run(sid, "c", ["sh", "-c", "read line; echo got $line"], stdin=True)
    session = await node.runtime.attach(cid, stdin=True, tty=False)
    await session.write_stdin(b"ping\n")
    out = b"".join([data async for _, data in session.output()])
    assert out == b"got ping\n" and await session.wait() == 0


async def test_what_cannot_run_here_fails_clearly(node: Node, tmp_path: Path) -> None:
    sid = await node.pod("bad")
    with pytest.raises(CreateContainerFailure, match="without a command"):
        await node.run(sid, "c", [], image="nginx")
    with pytest.raises(CreateContainerFailure, match='"no-such-program-here": executable file not found'):
        await node.run(sid, "c", ["no-such-program-here"], image="busybox")
    with pytest.raises(CreateContainerFailure, match="does not exist"):
        await node.run(sid, "c", ["true"], working_dir=str(tmp_path / "missing"))
    cid = await node.run(sid, "c", ["sh", "-c", "exit 0"], image="busybox")  # host programs stand in
    await node.wait_state(cid, ContainerState.EXITED)
    assert (await node.runtime.container_status(cid)).image == "docker.io/library/busybox:latest"
    assert await node.runtime.image_status(ImageSpec("busybox")) is not None
    assert not list(node.runtime.container_dir.glob("*/argv"))[1:], "failed creations left directories"


async def test_a_start_failure_is_a_start_error(node: Node, tmp_path: Path) -> None:
    sid = await node.pod("start")
    program = tmp_path / "prog"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    cid = await node.run(sid, "c", [str(program)], start=False)
    program.unlink()
    with pytest.raises(StartContainerFailure, match="not found"):
        await node.runtime.start_container(cid)
    status = await node.runtime.container_status(cid)
    assert (status.state, status.reason, status.exit_code) == (ContainerState.EXITED, "StartError", 128)


async def test_recover_adopts_running_containers(node: Node) -> None:
    sid = await node.pod("keep")
    ip = (await node.runtime.pod_sandbox_status(sid)).ip
    running = await node.run(sid, "run", ["sh", "-c", "echo up; sleep 30"])
    done = await node.run(sid, "done", ["sh", "-c", "exit 7"])
    await node.wait_state(done, ContainerState.EXITED)
    unstarted = await node.run(sid, "later", ["true"], start=False)
    pid = node.runtime.init_pid(node.runtime._containers[running])
    await node.runtime.close()
    runtime = node.new_runtime()
    await node.network.recover()
    await runtime.recover()
    assert (await runtime.pod_sandbox_status(sid)).ip == ip
    assert (await runtime.container_status(running)).state is ContainerState.RUNNING
    assert alive(pid)
    assert (await runtime.container_status(done)).exit_code == 7
    assert unstarted not in {c.id for c in await runtime.list_containers()}
    await runtime.stop_container(running, 0)
    assert (await runtime.container_status(running)).exit_code == 137
    assert node.events[-1].type is EventType.STOPPED
    another = await node.pod("another")
    assert (await runtime.pod_sandbox_status(another)).ip != ip


async def test_a_lost_shim_ends_its_container(node: Node) -> None:
    sid = await node.pod("lost")
    cid = await node.run(sid, "c", ["sleep", "30"])
    c = node.runtime._containers[cid]
    await node.runtime.close()
    os.kill(c.shim_pid, signal.SIGKILL)
    assert c.popen is not None
    c.popen.wait()  # this test process started the shim: collect it, as a real restart would not see it
    runtime = node.new_runtime()
    await runtime.recover()
    status = await runtime.container_status(cid)
    assert (status.state, status.exit_code) == (ContainerState.EXITED, 255)


async def test_remove_sandbox_frees_the_address_and_files(node: Node) -> None:
    sid = await node.pod("gone")
    cid = await node.run(sid, "c", ["sleep", "30"])
    log_path = (await node.runtime.container_status(cid)).log_path
    assert log_path.startswith(str(node.state))
    await node.runtime.stop_pod_sandbox(sid)
    assert (await node.runtime.pod_sandbox_status(sid)).state is SandboxState.NOT_READY
    assert node.network.pods() == []
    await node.runtime.remove_pod_sandbox(sid)
    assert await node.runtime.list_containers() == []
    assert list(node.runtime.container_dir.iterdir()) == list(node.runtime.sandbox_dir.iterdir()) == []
    assert not os.path.exists(log_path)


async def test_stats_and_status(node: Node) -> None:
    sid = await node.pod("stats")
    cid = await node.run(sid, "c", ["sleep", "30"])
    for _ in range(100):  # right after its exec a process may not have touched any page yet
        stats = await node.runtime.container_stats(cid)
        if stats.memory_working_set_bytes:
            break
        await asyncio.sleep(0.02)
    assert stats.memory_working_set_bytes > 0
    conditions = await node.runtime.status()
    assert all(c.status for c in conditions) and "not isolated" in conditions[0].message
    assert (await node.runtime.version()).runtime_name == "process"


async def test_a_tty_container_has_a_terminal_and_takes_input(node: Node) -> None:
    sid = await node.pod("tty-container")
    cid = await node.run(sid, "c", ["sh", "-c", "tty; read line; echo got $line"], tty=True, stdin=True)
    session = await node.runtime.attach(cid, stdin=True, tty=True)
    await session.write_stdin(b"hi\n")
    out = b"".join([data async for _, data in session.output()])
    assert b"got hi" in out and await session.wait() == 0
    log = await node.log(cid)  # what it printed before the attach came is in the log
    assert b"/dev/pts/" in log and b"got hi" in log
