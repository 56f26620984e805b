"""Attach to real containers (runtime/streams.py), as root: a client's end of stdin reaches the container only
with ``stdinOnce``; otherwise stdin stays open for the next attach, as the kubelet's runtimes keep it."""

from __future__ import annotations

import pytest
from native_helpers import Native

from nanokube.kubelet.runtime.interface import ContainerState

pytestmark = pytest.mark.timeout(120)


async def test_an_attach_that_ends_its_stdin_leaves_the_containers_stdin_open(native: Native) -> None:
    sid = await native.pod("reader")
    cid = await native.run(sid, "c", ["sh", "-c", "while read line; do echo got $line; done; echo eof"],
                           stdin=True)
    for word in (b"one", b"two"):  # two attaches one after the other, each ending its stdin
        session = await native.runtime.attach(cid, stdin=True, tty=False)
        await session.write_stdin(word + b"\n")
        await native.wait_log(cid, b"got " + word)
        await session.close_stdin()
        session.writer.close()  # type: ignore[attr-defined]  # the client goes away
    assert (await native.runtime.container_status(cid)).state is ContainerState.RUNNING
    assert await native.log(cid) == b"got one\ngot two\n"


async def test_with_stdin_once_the_end_of_the_clients_stdin_closes_the_containers(native: Native) -> None:
    sid = await native.pod("once")
    cid = await native.run(sid, "c", ["sh", "-c", "cat; echo stdin closed"], stdin=True, stdin_once=True)
    session = await native.runtime.attach(cid, stdin=True, tty=False)
    await session.write_stdin(b"line\n")
    await session.close_stdin()  # the client is still attached and sees the rest of the output
    out = [chunk async for chunk in session.output()]
    assert b"".join(data for _, data in out) == b"line\nstdin closed\n"
    assert await session.wait() == 0
