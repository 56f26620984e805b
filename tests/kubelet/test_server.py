"""The kubelet server on simulated nodes: logs, exec and attach over v5/v4 channels, port-forward over v4 channels
and tunnelled SPDY/3.1, and the errors it answers before an upgrade."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from kubelet_helpers import SimCluster, pod, sim_cluster

from nanokube.kubelet import spdy
from nanokube.kubelet.server import HttpError, KubeletServer, KubeletServerSettings, log_container_id

TOKEN = "node-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextlib.asynccontextmanager
async def kubelet(sc: SimCluster) -> AsyncIterator[str]:
    server = KubeletServer(sc.sim.agent, KubeletServerSettings(port=0, token=TOKEN))
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(server.run(stop=stop, started=bound.set_result))
    try:
        yield f"http://127.0.0.1:{await bound}"
    finally:
        stop.set()
        await task


@contextlib.asynccontextmanager
async def node_with_pod(annotations: dict[str, str] | None = None, *, restart_policy: str = "Always"
                        ) -> AsyncIterator[tuple[SimCluster, str, aiohttp.ClientSession]]:
    async with sim_cluster() as sc, kubelet(sc) as base, aiohttp.ClientSession(headers=AUTH) as http:
        await sc.client.create(sc.pods, "default", pod("p", "sim-node-0", annotations=annotations,
                                                       restart_policy=restart_policy))
        await sc.pod_when("p", lambda p: (p.get("status") or {}).get("phase") in ("Running", "Succeeded"))
        yield sc, base, http


async def frames(ws: aiohttp.ClientWebSocketResponse) -> list[bytes]:
    """Every binary message until the server closes."""
    out = []
    async for msg in ws:
        if msg.type is aiohttp.WSMsgType.BINARY:
            out.append(msg.data)
    return out


def status_of(received: list[bytes]) -> dict[str, Any]:
    assert received[-1][0] == 3
    result: dict[str, Any] = json.loads(received[-1][1:])
    return result


def stdout_of(received: list[bytes]) -> bytes:
    return b"".join(m[1:] for m in received if m[0] == 1)


def test_log_container_ids_follow_the_kubelets_rules() -> None:
    p = {"metadata": {"name": "p"}}
    running = {"name": "c", "containerID": "fake://abc", "state": {"running": {}},
               "lastState": {"terminated": {"containerID": "fake://old"}}}
    assert log_container_id(p, {"containerStatuses": [running]}, "c", False) == "abc"
    assert log_container_id(p, {"containerStatuses": [running]}, "c", True) == "old"
    cases = [
        ({}, False, 'container "c" in pod "p" is not available'),
        ({"containerStatuses": [{"name": "c", "state": {"running": {}}, "lastState": {}}]}, True,
         'previous terminated container "c" in pod "p" not found'),
        ({"initContainerStatuses": [{"name": "c", "state": {"waiting": {"reason": "PodInitializing"}}}]}, False,
         'container "c" in pod "p" is waiting to start: PodInitializing'),
        ({"containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "ErrImagePull"}}}]}, False,
         'container "c" in pod "p" is waiting to start: image can\'t be pulled'),
        ({"containerStatuses": [{"name": "c", "state": {}}]}, False,
         'container "c" in pod "p" is waiting to start - no logs yet'),
    ]
    for status, previous, message in cases:
        with pytest.raises(HttpError) as err:
            log_container_id(p, status, "c", previous)
        assert (err.value.status, err.value.message) == (400, message)


async def test_the_token_guards_everything_but_healthz() -> None:
    async with sim_cluster() as sc, kubelet(sc) as base, aiohttp.ClientSession() as http:
        async with http.get(f"{base}/containerLogs/default/p/web") as answer:
            assert answer.status == 401
        async with http.get(f"{base}/containerLogs/default/p/web", headers={"Authorization": "Bearer no"}) as answer:
            assert answer.status == 401
        async with http.get(f"{base}/healthz") as answer:
            assert (answer.status, await answer.text()) == (200, "ok")


async def test_logs_stream_with_options_and_follow_until_the_container_exits() -> None:
    notes = {"sim.nanokube.io/log": "one\ntwo", "sim.nanokube.io/run-seconds": "0.5"}
    async with node_with_pod(notes, restart_policy="Never") as (_, base, http):
        logs = f"{base}/containerLogs/default/p/web"
        async with http.get(f"{logs}?follow=true") as answer:
            assert answer.status == 200 and answer.headers["Content-Type"] == "text/plain"
            body = await answer.text()
        assert body.splitlines()[1:] == ["one", "two", "simulated container web exited with code 0"]
        async with http.get(f"{logs}?tailLines=1&timestamps=true") as answer:
            assert (await answer.text()).endswith("Z simulated container web exited with code 0\n")
        async with http.get(f"{logs}?limitBytes=9") as answer:
            assert await answer.read() == b"simulated"
        for path, status, text in [("/containerLogs/default/nope/web", 404, 'pod "nope" does not exist'),
                                   ("/containerLogs/default/p/other", 404, 'container "other" not found in pod "p"'),
                                   ("/containerLogs/default/p/web?tailLines=x", 400,
                                    '{"message": "Unable to decode query."}')]:
            async with http.get(base + path) as answer:
                assert (answer.status, await answer.text()) == (status, text)


async def test_a_stopped_node_does_not_answer() -> None:
    async with node_with_pod() as (sc, base, http):
        sc.sim.stop_node("sim-node-0")
        async with http.get(f"{base}/containerLogs/default/p/web") as answer:
            assert (answer.status, await answer.text()) == (503, "node sim-node-0 is not responding")


async def test_exec_v5_sends_output_then_the_exit_status() -> None:
    async with node_with_pod() as (_, base, http):
        url = f"{base}/exec/default/p/web?command=sh&command=-c&command=echo hi; echo no >%262; exit 3" \
              "&stdout=1&stderr=1"
        async with http.ws_connect(url, protocols=["v5.channel.k8s.io"]) as ws:
            assert ws.protocol == "v5.channel.k8s.io"
            received = await frames(ws)
            assert ws.close_code == 1000
        assert received[0] == b"\x01"  # the empty hello on stdout
        assert [m for m in received[1:-1]] == [b"\x01hi\n", b"\x02no\n"]
        assert status_of(received) == {
            "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": "command terminated with non-zero exit code: error executing command "
                       "[sh -c echo hi; echo no >&2; exit 3], exit code 3",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}


async def test_exec_stdin_closes_with_v5_and_feeds_a_shell_with_v4() -> None:
    async with node_with_pod() as (_, base, http):
        url = f"{base}/exec/default/p/web?command=cat&stdin=1&stdout=1&stderr=1"
        async with http.ws_connect(url, protocols=["v5.channel.k8s.io", "v4.channel.k8s.io"]) as ws:
            await ws.send_bytes(b"\x00round ")
            await ws.send_bytes(b"\x00trip")
            await ws.send_bytes(b"\xff\x00")  # v5 CLOSE of stdin: cat sees EOF
            received = await frames(ws)
        assert stdout_of(received) == b"round trip"
        assert status_of(received) == {"metadata": {}, "status": "Success"}
        url = f"{base}/exec/default/p/web?command=sh&stdin=1&stdout=1"
        async with http.ws_connect(url, protocols=["v4.channel.k8s.io"]) as ws:
            assert ws.protocol == "v4.channel.k8s.io"
            await ws.send_bytes(b"\x00echo four\nexit 4\n")
            received = await frames(ws)
        assert stdout_of(received) == b"four\n"
        assert status_of(received)["details"] == {"causes": [{"reason": "ExitCode", "message": "4"}]}


async def test_exec_stdin_also_comes_in_text_frames() -> None:
    # The Python client writes str stdin as a text frame: chr(0) + data.
    async with node_with_pod() as (_, base, http):
        url = f"{base}/exec/default/p/web?command=cat&stdin=1&stdout=1&stderr=1"
        async with http.ws_connect(url, protocols=["v5.channel.k8s.io"]) as ws:
            await ws.send_str("\x00as text ")
            await ws.send_bytes(b"\x00and bytes")
            await ws.send_bytes(b"\xff\x00")
            received = await frames(ws)
        assert stdout_of(received) == b"as text and bytes"


async def test_exec_with_a_tty_follows_resizes() -> None:
    async with node_with_pod() as (_, base, http):
        url = f"{base}/exec/default/p/web?command=sh&stdin=1&stdout=1&stderr=1&tty=1"
        async with http.ws_connect(url, protocols=["v5.channel.k8s.io"]) as ws:
            await ws.send_bytes(b'\x04{"Width":100,"Height":30}')
            await ws.send_bytes(b"\x00stty size\n")
            await ws.send_bytes(b"\xff\x00")
            received = await frames(ws)
        assert stdout_of(received) == b"30 100\r\n"
        assert all(m[0] != 2 for m in received)  # a tty has no separate stderr


async def test_exec_refusals_before_and_after_the_upgrade() -> None:
    async with node_with_pod() as (_, base, http):
        exec_url = f"{base}/exec/default/p/web?command=true"
        for url, status, text in [
            (exec_url, 400, "you must specify at least 1 of stdin, stdout, stderr"),
            (f"{base}/exec/default/p/other?command=true&stdout=1", 500, 'container not found ("other")'),
            (f"{base}/exec/default/nope/web?command=true&stdout=1", 404, "pod does not exist"),
            (f"{exec_url}&stdout=1", 400, "Upgrade request required"),
        ]:
            async with http.get(url) as answer:
                assert (answer.status, await answer.text()) == (status, text)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{exec_url}&stdout=1", protocols=["channel.k8s.io"])
        assert refused.value.status == 400
        async with http.ws_connect(f"{base}/exec/default/p/web?command=python3&stdout=1",
                                   protocols=["v5.channel.k8s.io"]) as ws:
            status = status_of(await frames(ws))
        assert status["reason"] == "InternalError" and status["code"] == 500
        assert status["message"].startswith("Internal error occurred: error executing command in container: "
                                            'OCI runtime exec failed')


async def test_attach_relays_until_the_container_exits() -> None:
    async with node_with_pod({"sim.nanokube.io/run-seconds": "1"}, restart_policy="Never") as (_, base, http):
        url = f"{base}/attach/default/p/web?stdin=1&stdout=1&stderr=1"
        async with http.ws_connect(url, protocols=["v5.channel.k8s.io"]) as ws:
            await ws.send_bytes(b"\x00are you there\n")
            received = await frames(ws)
        assert stdout_of(received) == b"are you there\n"
        assert status_of(received) == {"metadata": {}, "status": "Success"}


@contextlib.asynccontextmanager
async def upper_echo() -> AsyncIterator[int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            writer.write(data.upper())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_port_forward_v4_channels() -> None:
    async with upper_echo() as port, node_with_pod(
            {"sim.nanokube.io/port-forward-to.80": f"127.0.0.1:{port}"}) as (_, base, http):
        async with http.get(f"{base}/portForward/default/p") as answer:
            assert answer.status == 400  # not an upgrade
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{base}/portForward/default/p", protocols=["v4.channel.k8s.io"])
        assert refused.value.status == 400  # no port= for the v4 protocol
        url = f"{base}/portForward/default/p?port=80,81"
        async with http.ws_connect(url, protocols=["v5.channel.k8s.io", "v4.channel.k8s.io"]) as ws:
            assert ws.protocol == "v4.channel.k8s.io"
            hello = [await ws.receive_bytes() for _ in range(4)]
            assert hello == [b"\x00\x50\x00", b"\x01\x50\x00", b"\x02\x51\x00", b"\x03\x51\x00"]
            await ws.send_bytes(b"\x00hello")
            got: dict[int, bytes] = {}
            while got.get(0) != b"HELLO" or 3 not in got:
                message = await asyncio.wait_for(ws.receive_bytes(), 5)
                got[message[0]] = got.get(message[0], b"") + message[1:]
        assert got[3].decode().startswith("error forwarding port 81 to pod ")
        assert "nothing listens in a simulated container" in got[3].decode()


class SpdyClient:
    """kubectl's side of a tunnelled SPDY session, for tests."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.writer, self.parser = ws, spdy.FrameWriter(), spdy.FrameParser()
        self.pending: list[spdy.Frame] = []

    async def send(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def next(self) -> spdy.Frame:
        while not self.pending:
            self.pending += self.parser.feed(await asyncio.wait_for(self.ws.receive_bytes(), 5))
        return self.pending.pop(0)

    async def open_pair(self, request: int, port: int) -> None:
        for stream_id, kind in ((2 * request * 2 + 1, "error"), (2 * request * 2 + 3, "data")):
            await self.send(self.writer.syn_stream(stream_id, {"streamType": kind, "port": str(port),
                                                              "requestID": str(request)}))


async def test_port_forward_over_spdy_in_a_websocket() -> None:
    notes = "sim.nanokube.io/port-forward-to.80"
    async with upper_echo() as port, node_with_pod({notes: f"127.0.0.1:{port}"}) as (_, base, http), \
            http.ws_connect(f"{base}/portForward/default/p", protocols=["SPDY/3.1+portforward.k8s.io"]) as ws:
        assert ws.protocol == "SPDY/3.1+portforward.k8s.io"
        client = SpdyClient(ws)
        await client.open_pair(0, 80)  # streams 1 (error) and 3 (data)
        assert [await client.next(), await client.next()] == [spdy.SynReply(1, {}), spdy.SynReply(3, {})]
        await client.send(client.writer.ping(1))
        assert await client.next() == spdy.Ping(1)
        await client.send(client.writer.data(3, b"over spdy"))
        assert await client.next() == spdy.DataFrame(3, b"OVER SPDY")
        await client.send(client.writer.data(3, fin=True))  # the local connection ended
        # The target sees the half-close and ends: data stream finished, then the (empty) error stream.
        assert [await client.next(), await client.next()] == [spdy.DataFrame(3, b"", fin=True),
                                                              spdy.DataFrame(1, b"", fin=True)]
        await client.open_pair(1, 81)  # streams 5 and 7: nothing listens
        assert [await client.next(), await client.next()] == [spdy.SynReply(5, {}), spdy.SynReply(7, {})]
        error = await client.next()
        assert isinstance(error, spdy.DataFrame) and error.stream_id == 5 and error.fin
        assert error.data.decode().startswith("error forwarding port 81 to pod ")
        assert await client.next() == spdy.DataFrame(7, b"", fin=True)
