"""Streaming on the fake runtime: built-in commands for exec, attach, simulated logs, loopback port-forward."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from nanokube.kubelet.runtime.fake import FakeRuntime
from nanokube.kubelet.runtime.fakestreams import parse_script, redirections
from nanokube.kubelet.runtime.interface import (
    CONTAINER_NAME_LABEL,
    ContainerConfig,
    ContainerMetadata,
    ExecSession,
    ImageSpec,
    LogOptions,
    PodSandboxConfig,
    PodSandboxMetadata,
    RuntimeFailure,
)


async def running(annotations: dict[str, str] | None = None) -> tuple[FakeRuntime, str, str]:
    """A fake runtime with one running container; returns (runtime, sandbox id, container id)."""
    runtime = FakeRuntime(pod_cidr="10.42.0.0/24")
    sandbox = PodSandboxConfig(PodSandboxMetadata("web-1", "default", "uid-1"), annotations=dict(annotations or {}))
    sid = await runtime.run_pod_sandbox(sandbox)
    config = ContainerConfig(ContainerMetadata("app"), "busybox", labels={CONTAINER_NAME_LABEL: "app"})
    await runtime.pull_image(ImageSpec("busybox"))
    cid = await runtime.create_container(sid, config, sandbox)
    await runtime.start_container(cid)
    return runtime, sid, cid


async def collect(session: ExecSession) -> tuple[bytes, bytes, int]:
    out, err = b"", b""
    async for stream, data in session.output():
        if stream == 1:
            out += data
        else:
            err += data
    return out, err, await asyncio.wait_for(session.wait(), 5)


async def run(cmd: list[str], *, stdin: bytes | None = None, tty: bool = False) -> tuple[bytes, bytes, int]:
    runtime, _, cid = await running()
    session = await runtime.exec(cid, cmd, stdin=stdin is not None, tty=tty)
    if stdin is not None:
        await session.write_stdin(stdin)
        await session.close_stdin()
    return await collect(session)


def test_scripts_parse_into_commands_operators_and_redirections() -> None:
    assert parse_script("echo 'a b'; false && echo no || echo yes\nexit 4") == [
        (";", ["echo", "a b"]), (";", ["false"]), ("&&", ["echo", "no"]), ("||", ["echo", "yes"]),
        (";", ["exit", "4"])]
    assert redirections(["echo", "x", ">&", "2"]) == (["echo", "x"], {1: 2})
    assert redirections(["cat", "f", "2", ">", "/dev/null"]) == (["cat", "f"], {2: None})


async def test_exec_runs_built_ins_with_exit_codes_and_both_streams() -> None:
    assert await run(["echo", "hello", "world"]) == (b"hello world\n", b"", 0)
    assert await run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]) == (b"out\n", b"err\n", 3)
    assert await run(["sh", "-c", "false && echo a || echo b; true"]) == (b"b\n", b"", 0)
    assert await run(["sh", "-c", "frobnicate"]) == (b"", b"sh: 1: frobnicate: not found\n", 127)
    assert await run(["cat", "/etc/passwd"]) == (b"", b"cat: /etc/passwd: No such file or directory\n", 1)
    assert await run(["hostname"]) == (b"web-1\n", b"", 0)


async def test_stdin_round_trips_through_cat_and_feeds_a_shell_line_by_line() -> None:
    assert await run(["cat"], stdin=b"line one\nline two\n") == (b"line one\nline two\n", b"", 0)
    assert await run(["sh"], stdin=b"echo first\nexit 5\necho never\n") == (b"first\n", b"", 5)


async def test_a_tty_joins_stderr_to_stdout_with_crlf_and_follows_resizes() -> None:
    runtime, _, cid = await running()
    session = await runtime.exec(cid, ["sh"], stdin=True, tty=True)
    await session.resize(132, 43)
    await session.write_stdin(b"stty size; echo oops >&2\n")
    await session.close_stdin()
    assert await collect(session) == (b"43 132\r\noops\r\n", b"", 0)
    assert await run(["stty", "size"]) == (b"", b"stty: 'standard input': Inappropriate ioctl for device\n", 1)


async def test_unknown_commands_and_stopped_containers_fail_to_start() -> None:
    runtime, _, cid = await running()
    with pytest.raises(RuntimeFailure, match='exec: "python3": executable file not found in \\$PATH'):
        await runtime.exec(cid, ["python3"], stdin=False, tty=False)
    await runtime.stop_container(cid, 0)
    with pytest.raises(RuntimeFailure, match="not running"):
        await runtime.exec(cid, ["echo"], stdin=False, tty=False)


async def test_attach_echoes_stdin_until_the_container_exits_with_its_code() -> None:
    runtime, _, cid = await running()
    session = await runtime.attach(cid, stdin=True, tty=False)
    await session.write_stdin(b"ping\n")
    first = await anext(aiter(session.output()))
    assert first == (1, b"ping\n")
    await runtime.stop_container(cid, 30)  # a graceful stop: the simulated process exits 0
    assert await asyncio.wait_for(session.wait(), 5) == 0
    runtime, _, cid = await running()
    session = await runtime.attach(cid, stdin=False, tty=False)
    await runtime.stop_container(cid, 0.0)  # killed
    assert await asyncio.wait_for(session.wait(), 5) == 137


async def lines(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


async def test_logs_tail_since_timestamps_and_limits() -> None:
    runtime, _, cid = await running({"sim.nanokube.io/log": "alpha\nbeta"})
    everything = await lines(runtime.logs(cid, LogOptions()))
    assert everything == [b"simulated container app (image docker.io/library/busybox:latest) started\n",
                          b"alpha\n", b"beta\n"]
    assert await lines(runtime.logs(cid, LogOptions(tail_lines=1))) == [b"beta\n"]
    assert await lines(runtime.logs(cid, LogOptions(tail_lines=0))) == []
    assert await lines(runtime.logs(cid, LogOptions(limit_bytes=3))) == [b"sim"]
    stamped = await lines(runtime.logs(cid, LogOptions(timestamps=True, tail_lines=1)))
    stamp, _, text = stamped[0].partition(b" ")
    assert text == b"beta\n" and len(stamp) == len(b"2026-11-27T18:00:26.123456789Z") and stamp.endswith(b"Z")
    assert await lines(runtime.logs(cid, LogOptions(since_time=4102444800.0))) == []  # 2100: nothing yet


async def test_following_logs_ends_with_the_container() -> None:
    runtime, _, cid = await running()
    follow = asyncio.ensure_future(lines(runtime.logs(cid, LogOptions(follow=True))))
    await asyncio.sleep(0.05)
    assert not follow.done()
    await runtime.stop_container(cid, 0.0)
    got = await asyncio.wait_for(follow, 5)
    assert got[-1] == b"simulated container app exited with code 137\n" and len(got) == 2


async def test_followers_and_attachers_that_give_up_are_forgotten() -> None:
    runtime, _, cid = await running()
    follow = asyncio.ensure_future(lines(runtime.logs(cid, LogOptions(follow=True))))
    session = await runtime.attach(cid, stdin=False, tty=False)
    await asyncio.sleep(0.05)
    assert len(runtime._exit_waiters) == 2
    follow.cancel()
    session.cancel()  # type: ignore[attr-defined]
    await asyncio.sleep(0)
    assert len(runtime._exit_waiters) == 0


async def test_port_forward_reaches_only_the_loopback_target_of_the_annotation() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data.upper())
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        runtime, sid, _ = await running({"sim.nanokube.io/port-forward-to.80": f"127.0.0.1:{port}"})
        stream = await runtime.port_forward(sid, 80)
        await stream.write(b"abc")
        assert await stream.read() == b"ABC"
        await stream.close_write()  # type: ignore[attr-defined]
        assert await stream.read() == b""  # the target saw the half-close and finished
        await stream.close()
        with pytest.raises(RuntimeFailure, match="nothing listens"):
            await runtime.port_forward(sid, 8080)
        runtime, sid, _ = await running({"sim.nanokube.io/port-forward-to": "10.1.2.3:80"})
        with pytest.raises(RuntimeFailure, match="loopback"):
            await runtime.port_forward(sid, 80)
    finally:
        server.close()
        await server.wait_closed()
