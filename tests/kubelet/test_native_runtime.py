"""The native runtime on this machine, as root: runc containers from the host image and a busybox rootfs,
Pods sharing localhost, limits, OOM kills, graceful stop, exec/attach/port-forward, logs, stats, recovery after
an agent restart, and a clean host afterwards (checked after every test)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import time
from pathlib import Path

import pytest
from native_helpers import BUSYBOX, Native, force_clean, leftovers, make_native

from nanokube.kubelet.network.base import PodNetworkInfo
from nanokube.kubelet.runtime.cgroups import Cgroup
from nanokube.kubelet.runtime.interface import (
    ContainerEvent,
    ContainerState,
    CreateContainerFailure,
    EventType,
    ImageSpec,
    LinuxResources,
    Mount,
    NotFoundFailure,
    RuntimeFailure,
    SandboxFailure,
    SandboxState,
)
from nanokube.kubelet.runtime.rootfs import HOST_IMAGE

pytestmark = pytest.mark.timeout(120)


async def test_host_image_runs_python(native: Native) -> None:
    sid = await native.pod("py")
    cid = await native.run(sid, "py", ["python3", "-c", "print(42)"], image="host")
    status = await native.wait_exit(cid)
    assert (status.exit_code, status.reason) == (0, "Completed")
    assert status.image == HOST_IMAGE
    assert await native.log(cid) == b"42\n"
    raw = Path(status.log_path).read_text()
    stamp, stream, tag, text = raw.rstrip("\n").split(" ", 3)
    assert (stream, tag, text) == ("stdout", "F", "42") and stamp.endswith("Z") and len(stamp) == 30


async def test_host_image_writes_stay_private(native: Native) -> None:
    marker = Path("/var/tmp") / f"nanokube-test-{secrets.token_hex(4)}"  # /tmp is a fresh tmpfs in containers
    marker.write_text("host\n")
    try:
        sid = await native.pod("cow")
        cid = await native.run(sid, "cow", ["sh", "-c", f"cat {marker}; echo container > {marker}; cat {marker}; "
                                            f"ls -A {native.settings.state_dir} | wc -l"], image="host")
        assert (await native.wait_exit(cid)).exit_code == 0
        assert await native.log(cid) == b"host\ncontainer\n0\n"  # the runtime's state is hidden
        assert marker.read_text() == "host\n"
    finally:
        marker.unlink()


async def test_busybox_exit_code_and_events(native: Native) -> None:
    events: list[ContainerEvent] = []
    native.runtime.subscribe(events.append)
    sid = await native.pod("bb")
    cid = await native.run(sid, "bb", ["sh", "-c", "echo hi; echo oops >&2; exit 3"])
    status = await native.wait_exit(cid)
    assert (status.state, status.exit_code, status.reason) == (ContainerState.EXITED, 3, "Error")
    assert status.started_at > 0 and status.finished_at >= status.started_at
    assert sorted((await native.log(cid)).splitlines()) == [b"hi", b"oops"]
    assert [e.type for e in events] == [EventType.CREATED, EventType.STARTED, EventType.STOPPED]
    assert {e.container_id for e in events} == {cid} and events[0].pod_uid == native.sandboxes[sid].metadata.uid


async def test_containers_start_with_default_signal_dispositions(native: Native) -> None:
    sid = await native.pod("signals")
    cid = await native.run(sid, "c", ["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"])
    assert (await native.wait_exit(cid)).exit_code == 0
    masks = dict(line.split(":\t") for line in (await native.log(cid)).decode().splitlines())
    ignored, blocked = int(masks["SigIgn"], 16), int(masks["SigBlk"], 16)
    for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT):  # Python ignores the first two
        assert not (ignored | blocked) & (1 << (signum - 1)), signum


async def test_containers_of_a_pod_share_localhost_and_pods_do_not(native: Native) -> None:
    sid = await native.pod("web")
    await native.run(sid, "server", ["sh", "-c", "echo shared-localhost > /var/www/hello.txt; "
                                                 "exec httpd -f -p 127.0.0.1:8080 -h /var/www"])
    client = await native.run(sid, "client", ["sh", "-c", "for i in $(seq 100); do "
                                                          "wget -qO- http://127.0.0.1:8080/hello.txt && exit 0; "
                                                          "sleep 0.05; done; exit 1"])
    status = await native.wait_exit(client)
    assert status.exit_code == 0, await native.log(client)
    assert await native.log(client) == b"shared-localhost\n"
    other = await native.pod("other")
    stranger = await native.run(other, "client", ["wget", "-qO-", "http://127.0.0.1:8080/hello.txt"])
    assert (await native.wait_exit(stranger)).exit_code != 0


async def test_pod_hostname_hosts_and_shm(native: Native) -> None:
    sid = await native.pod("named")
    writer = await native.run(sid, "w", ["sh", "-c", "echo shm > /dev/shm/x; hostname; cat /etc/hostname; "
                                                     "grep -c localhost /etc/hosts; echo $HOSTNAME"])
    assert (await native.wait_exit(writer)).exit_code == 0
    assert await native.log(writer) == b"named\nnamed\n2\nnamed\n"
    reader = await native.run(sid, "r", ["cat", "/dev/shm/x"])
    await native.wait_exit(reader)
    assert await native.log(reader) == b"shm\n"


async def test_limits_reach_the_cgroup(native: Native) -> None:
    sid = await native.pod("limits")
    limits = LinuxResources(cpu_period=100000, cpu_quota=20000, cpu_shares=204, memory_limit_bytes=64 << 20,
                            pids_limit=40)
    cid = await native.run(sid, "c", ["sleep", "1000"], resources=limits)
    record = json.loads((native.settings.state_dir / "containers" / cid / "container.json").read_text())
    cgroup = Cgroup(native.runtime.cgroups, record["cgroups_path"])
    read = lambda controller, name: (cgroup.controller_dir(controller) / name).read_text().strip()  # noqa: E731
    assert read("memory", "memory.limit_in_bytes") == str(64 << 20)
    assert (read("cpu", "cpu.cfs_quota_us"), read("cpu", "cpu.shares")) == ("20000", "204")
    assert read("pids", "pids.max") == "40"
    stats = await native.runtime.container_stats(cid)
    assert stats.memory_working_set_bytes > 0


async def test_memory_limit_is_oom_killed(native: Native) -> None:
    sid = await native.pod("oom")
    cid = await native.run(sid, "hog", ["python3", "-c", "x = b'a' * (256 << 20); print('survived')"],
                           image="host", resources=LinuxResources(memory_limit_bytes=48 << 20))
    status = await native.wait_exit(cid)
    assert (status.exit_code, status.reason) == (137, "OOMKilled")
    assert b"survived" not in await native.log(cid)


async def test_stop_sends_sigterm_first(native: Native) -> None:
    sid = await native.pod("term")
    cid = await native.run(sid, "c", ["sh", "-c", "trap 'echo got TERM; exit 7' TERM; echo ready; "
                                                  "while true; do sleep 0.05; done"])
    await native.wait_log(cid, b"ready")
    await native.runtime.stop_container(cid, 30)
    status = await native.runtime.container_status(cid)
    assert (status.state, status.exit_code, status.reason) == (ContainerState.EXITED, 7, "Error")
    assert b"got TERM" in await native.log(cid)


async def test_stop_kills_after_the_grace_period(native: Native) -> None:
    sid = await native.pod("kill")
    cid = await native.run(sid, "c", ["sh", "-c", "trap 'echo ignored TERM' TERM; echo ready; "
                                                  "while true; do sleep 0.05; done"])
    await native.wait_log(cid, b"ready")
    await native.runtime.stop_container(cid, 0.5)
    status = await native.runtime.container_status(cid)
    assert (status.exit_code, status.reason) == (137, "Error")
    assert b"ignored TERM" in await native.log(cid)  # SIGTERM came first, SIGKILL after the grace period
    await native.runtime.stop_container(cid, 1)  # again: nothing to do


async def test_exec_exit_codes_stdin_and_tty(native: Native) -> None:
    sid = await native.pod("exec")
    cid = await native.run(sid, "c", ["sleep", "1000"], envs=[("GREETING", "hello")])
    rt = native.runtime
    result = await rt.exec_sync(cid, ["sh", "-c", "echo $GREETING; echo err >&2; exit 3"])
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"hello\n", b"err\n")
    session = await rt.exec(cid, ["sh", "-c", "cat; exit 4"], stdin=True, tty=False)
    await session.write_stdin(b"round trip\n")
    await session.close_stdin()
    out = [chunk async for chunk in session.output()]
    assert out == [(1, b"round trip\n")] and await session.wait() == 4
    tty = await rt.exec(cid, ["sh"], stdin=True, tty=True)
    await tty.resize(100, 30)
    await tty.write_stdin(b"stty size; exit 5\n")
    text = b"".join([data async for _, data in tty.output()])
    assert b"30 100" in text and await tty.wait() == 5
    with pytest.raises(RuntimeFailure):
        await rt.exec_sync(cid, ["sleep", "30"], timeout=0.3)
    listing = await rt.exec_sync(cid, ["ps", "-o", "args"])
    assert b"sleep 30" not in listing.stdout  # the timed-out command was killed


async def test_attach_round_trips_stdin(native: Native) -> None:
    sid = await native.pod("attach")
    cid = await native.run(sid, "c", ["sh", "-c", "read line; echo got $line; exit 2"], stdin=True)
    session = await native.runtime.attach(cid, stdin=True, tty=False)
    await session.write_stdin(b"abc\n")
    out = [chunk async for chunk in session.output()]
    assert out == [(1, b"got abc\n")] and await session.wait() == 2
    assert await native.log(cid) == b"got abc\n"


async def test_tty_container_attach_resize_and_log(native: Native) -> None:
    sid = await native.pod("tty")
    cid = await native.run(sid, "c", ["sh", "-c", "tty; read line; stty size; echo got $line"], tty=True,
                           stdin=True)
    await native.wait_log(cid, b"/dev/pts/")
    session = await native.runtime.attach(cid, stdin=True, tty=True)
    await session.resize(90, 20)
    await session.write_stdin(b"hello\n")
    out = b"".join([data async for _, data in session.output()])
    assert b"20 90" in out and b"got hello" in out
    assert await session.wait() == 0
    assert (await native.wait_exit(cid)).exit_code == 0
    assert b"got hello" in await native.log(cid)


async def test_stdin_once_closes_stdin_when_the_attach_ends(native: Native) -> None:
    sid = await native.pod("once")
    cid = await native.run(sid, "c", ["sh", "-c", "cat; echo stdin closed"], stdin=True, stdin_once=True)
    session = await native.runtime.attach(cid, stdin=True, tty=False)
    await session.write_stdin(b"line\n")
    await native.wait_log(cid, b"line")
    session.writer.close()  # type: ignore[attr-defined]  # the client goes away
    status = await native.wait_exit(cid)
    assert status.exit_code == 0 and await native.log(cid) == b"line\nstdin closed\n"
    with pytest.raises(RuntimeFailure):
        await native.runtime.attach(cid, stdin=True, tty=False)


async def test_port_forward_reaches_the_pod(native: Native) -> None:
    sid = await native.pod("fwd")
    await native.run(sid, "web", ["sh", "-c", "echo forwarded > /var/www/index.html; "
                                              "exec httpd -f -p 127.0.0.1:8081 -h /var/www"])
    for _ in range(100):
        try:
            stream = await native.runtime.port_forward(sid, 8081)
            break
        except RuntimeFailure:
            await asyncio.sleep(0.05)
    else:
        raise AssertionError("nothing listened on port 8081 in the pod")
    await stream.write(b"GET /index.html HTTP/1.0\r\n\r\n")
    reply = b""
    while chunk := await stream.read():
        reply += chunk
    await stream.close()
    assert reply.startswith(b"HTTP/1.") and reply.endswith(b"forwarded\n")


async def test_logs_options_and_previous_attempt(native: Native) -> None:
    sid = await native.pod("logs")
    first = await native.run(sid, "c", ["sh", "-c", "echo one; echo two; echo three"])
    await native.wait_exit(first)
    second = await native.run(sid, "c", ["sh", "-c", "echo a; sleep 0.3; echo b"], attempt=1)
    followed = await native.log(second, follow=True)
    assert followed == b"a\nb\n"
    assert await native.log(first) == b"one\ntwo\nthree\n"  # the previous attempt keeps its log
    assert await native.log(first, tail_lines=2) == b"two\nthree\n"
    assert await native.log(first, limit_bytes=5) == b"one\nt"
    assert await native.log(first, since_time=time.time() + 60) == b""
    stamped = (await native.log(first, timestamps=True)).splitlines()
    assert [line.split(b" ", 1)[1] for line in stamped] == [b"one", b"two", b"three"]
    await native.runtime.remove_container(first)
    assert not os.path.exists((await native.runtime.container_status(second)).log_path.replace("/1.log", "/0.log"))
    with pytest.raises(NotFoundFailure):
        await native.runtime.container_status(first)


async def test_recover_adopts_running_containers(native: Native) -> None:
    sid = await native.pod("survivor")
    running = await native.run(sid, "run", ["sh", "-c", "echo up; exec sleep 1000"])
    done = await native.run(sid, "done", ["sh", "-c", "exit 4"])
    created = await native.run(sid, "created", ["true"], start=False)
    await native.wait_exit(done)
    await native.wait_log(running, b"up")
    pid = int((native.settings.state_dir / "containers" / running / "init.pid").read_text())
    await native.runtime.close()

    rt = native.new_runtime()
    events: list[ContainerEvent] = []
    rt.subscribe(events.append)
    await rt.recover()
    assert [s.id for s in await rt.list_pod_sandboxes()] == [sid]
    assert (await rt.pod_sandbox_status(sid)).state is SandboxState.READY
    states = {c.metadata.name: (c.state, c.exit_code) for c in await rt.list_containers(sid)}
    assert states == {"run": (ContainerState.RUNNING, 0), "done": (ContainerState.EXITED, 4),
                      "created": (ContainerState.CREATED, 0)}
    assert int((native.settings.state_dir / "containers" / running / "init.pid").read_text()) == pid
    assert os.path.exists(f"/proc/{pid}") and b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert (await rt.exec_sync(running, ["echo", "still here"])).stdout == b"still here\n"
    await rt.start_container(created)
    await native.wait_exit(created)
    await rt.stop_container(running, 0)
    assert (await rt.container_status(running)).exit_code == 137
    assert [e.type for e in events if e.container_id == running] == [EventType.STOPPED]


async def test_a_lost_shim_ends_its_container(native: Native) -> None:
    sid = await native.pod("lost")
    cid = await native.run(sid, "c", ["sleep", "1000"])
    record = json.loads((native.settings.state_dir / "containers" / cid / "container.json").read_text())
    init = int((native.settings.state_dir / "containers" / cid / "init.pid").read_text())
    os.kill(record["shim_pid"], signal.SIGKILL)
    status = await native.wait_exit(cid)
    assert (status.exit_code, status.reason) == (255, "Error") and "shim" in status.message
    for _ in range(500):  # killed, then gone or a zombie of the host's init
        if dead(init):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the container outlived its shim")


def dead(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")
    except OSError:
        return True


async def test_remove_leaves_nothing(native: Native) -> None:
    sid = await native.pod("gone")
    await native.run(sid, "a", ["sleep", "1000"], image="host")
    await native.wait_exit(await native.run(sid, "b", ["true"]))
    await native.run(sid, "c", ["true"], start=False)
    await native.runtime.stop_pod_sandbox(sid)
    assert (await native.runtime.pod_sandbox_status(sid)).state is SandboxState.NOT_READY
    assert not leftovers(native)["netns"]
    await native.runtime.remove_pod_sandbox(sid)
    await native.runtime.remove_pod_sandbox(sid)  # idempotent
    assert not any(leftovers(native, spare=False).values()), leftovers(native, spare=False)
    assert not os.path.exists(native.sandboxes[sid].log_directory)


async def test_create_failures_leave_nothing(native: Native, tmp_path: Path) -> None:
    sid = await native.pod("bad")
    with pytest.raises(CreateContainerFailure, match="not present"):
        await native.run(sid, "c", ["true"], image="nanokube.test/missing:1")
    with pytest.raises(CreateContainerFailure, match="no such file"):
        await native.run(sid, "c", ["/nonexistent"])
    with pytest.raises(CreateContainerFailure, match="does not exist"):
        await native.run(sid, "c", ["true"], mounts=[Mount("/data", str(tmp_path / "missing"))])
    assert await native.runtime.list_containers(sid) == []
    assert os.listdir(native.settings.state_dir / "containers") == []


async def test_volumes_are_bind_mounted(native: Native, tmp_path: Path) -> None:
    data = tmp_path / "volume"
    data.mkdir()
    (data / "in").write_text("from the host\n")
    sid = await native.pod("vol")
    cid = await native.run(sid, "c", ["sh", "-c", "cat /data/in; echo back > /data/out; touch /ro/x"],
                           mounts=[Mount("/data", str(data)), Mount("/ro", str(data), readonly=True)])
    status = await native.wait_exit(cid)
    assert status.exit_code != 0  # /ro is read-only
    assert (await native.log(cid)).startswith(b"from the host\n")
    assert (data / "out").read_text() == "back\n"


async def test_images(native: Native) -> None:
    rt = native.runtime
    assert (await rt.image_status(ImageSpec("host"))) is not None
    assert await rt.pull_image(ImageSpec("nanokube.io/host:latest")) == (await rt.list_images())[0].repo_digests[0]
    assert await rt.image_status(ImageSpec(BUSYBOX)) is not None
    assert await rt.image_status(ImageSpec("nanokube.test/missing:1")) is None
    assert {i.repo_tags[0] for i in await rt.list_images()} == {HOST_IMAGE, BUSYBOX}
    await rt.remove_image(ImageSpec("host"))
    assert await rt.image_status(ImageSpec("host")) is not None
    assert (await rt.version()).runtime_name == "native"
    assert all(c.status for c in await rt.status())


async def test_host_network_pod(native: Native) -> None:
    sid = await native.pod("hostnet", host_network=True)
    cid = await native.run(sid, "c", ["hostname"])
    assert (await native.wait_exit(cid)).exit_code == 0
    assert (await native.log(cid)).decode().strip() == os.uname().nodename
    assert (await native.runtime.pod_sandbox_status(sid)).ip == ""


async def test_sandbox_of_a_recreated_runtime_is_cleaned(native: Native, busybox_rootfs: Path) -> None:
    """A sandbox left half-made by a crash (record says creating) loses its network on recovery."""
    sid = await native.pod("half")
    record = native.settings.state_dir / "sandboxes" / sid / "sandbox.json"
    data = json.loads(record.read_text())
    data["creating"] = True
    record.write_text(json.dumps(data))
    await native.runtime.close()
    rt = native.new_runtime()
    await rt.recover()
    assert (await rt.pod_sandbox_status(sid)).state is SandboxState.NOT_READY
    assert not leftovers(native)["netns"]


async def test_many_pods_at_once(native: Native) -> None:
    async def one(i: int) -> tuple[str, int, bytes]:
        sid = await native.pod(f"many{i}")
        cid = await native.run(sid, "c", ["sh", "-c", f"echo pod {i}; exit {i % 3}"],
                               image="host" if i % 2 else BUSYBOX)
        status = await native.wait_exit(cid)
        return sid, status.exit_code, await native.log(cid)

    results = await asyncio.gather(*(one(i) for i in range(12)))
    assert [(code, log) for _, code, log in results] == [(i % 3, f"pod {i}\n".encode()) for i in range(12)]
    await asyncio.gather(*(native.runtime.remove_pod_sandbox(sid) for sid, _, _ in results))
    assert not any(leftovers(native, spare=False).values()), leftovers(native, spare=False)


async def test_a_network_without_a_namespace_is_refused(native: Native) -> None:
    torn: list[str] = []

    class NoNamespace:
        async def setup(self, pod_uid: str, pod_namespace: str, pod_name: str) -> PodNetworkInfo:
            return PodNetworkInfo(pod_uid, pod_namespace, pod_name, "", "127.1.0.2", "")

        async def teardown(self, pod_uid: str) -> None:
            torn.append(pod_uid)

    native.runtime.network = NoNamespace()
    with pytest.raises(SandboxFailure, match="no network namespace"):
        await native.pod("flat")
    assert len(torn) == 1 and torn[0].startswith("flat-")
    assert os.listdir(native.settings.state_dir / "sandboxes") == []


def test_make_native_is_isolated(tmp_path: Path, busybox_rootfs: Path) -> None:
    a, b = make_native(tmp_path / "a", busybox_rootfs), make_native(tmp_path / "b", busybox_rootfs)
    assert a.settings.cgroup_root != b.settings.cgroup_root and a.netns_prefix != b.netns_prefix
    force_clean(a)
    force_clean(b)
