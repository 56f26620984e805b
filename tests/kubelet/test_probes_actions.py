"""The probe handlers against real sockets on 127.0.0.1: what succeeds, what fails, and the kubelet's wording."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_probes_helpers import ScriptedRuntime

from nanokube.kubelet.actions import (
    ActionError,
    HTTPRequest,
    Outcome,
    http_get,
    http_request,
    resolve_port,
    run_exec,
    run_probe_action,
    run_tcp,
)
from nanokube.kubelet.runtime.interface import (
    ContainerConfig,
    ContainerMetadata,
    ExecResult,
    ImageSpec,
    PodSandboxConfig,
    PodSandboxMetadata,
    RuntimeFailure,
)
from nanokube.util.certs import ensure_pki


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def http_server(routes: dict[str, tuple[int, dict[str, str], bytes]],
                      seen: list[bytes] | None = None) -> AsyncIterator[int]:
    """A tiny HTTP server on 127.0.0.1: ``routes[path] = (status, headers, body)``; requests go to ``seen``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if seen is not None:
            seen.append(head)
        path = head.split(b" ")[1].decode()
        code, headers, body = routes.get(path, (404, {}, b"not found"))
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"HTTP/1.1 {code} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def url(port: int, path: str) -> HTTPRequest:
    return HTTPRequest(f"http://127.0.0.1:{port}{path}", (("User-Agent", "kube-probe/1.37"), ("Accept", "*/*")))


async def test_http_2xx_succeeds_and_other_codes_fail_with_the_kubelets_message() -> None:
    routes = {"/ok": (200, {}, b"fine"), "/bad": (500, {}, b"boom")}
    async with http_server(routes) as port:
        ok = await http_get(url(port, "/ok"), 1)
        assert (ok.outcome, ok.output) == (Outcome.SUCCESS, "fine")
        bad = await http_get(url(port, "/bad"), 1)
        assert (bad.outcome, bad.output) == (Outcome.FAILURE, "HTTP probe failed with statuscode: 500")


async def test_http_follows_redirects_on_the_same_host_and_warns_on_others() -> None:
    routes = {"/old": (302, {"Location": "/bad"}, b""), "/bad": (503, {}, b""),
              "/away": (301, {"Location": "http://192.0.2.1/x"}, b"moved")}
    async with http_server(routes) as port:
        followed = await http_get(url(port, "/old"), 1)
        assert followed.output == "HTTP probe failed with statuscode: 503"
        away = await http_get(url(port, "/away"), 1)
        assert away.outcome is Outcome.WARNING and away.ok
        assert away.output == "Probe terminated redirects, Response body: moved"


async def test_http_sends_the_probe_headers_and_custom_ones() -> None:
    seen: list[bytes] = []
    spec = {"name": "web", "ports": [{"name": "http", "containerPort": 0}]}
    async with http_server({"/h": (200, {}, b"")}, seen) as port:
        spec["ports"][0]["containerPort"] = port
        action = {"path": "/h", "port": "http", "httpHeaders": [{"name": "X-Probe", "value": "yes"},
                                                                {"name": "Accept", "value": "text/plain"}]}
        result = await run_probe_action(ScriptedRuntime(), {"httpGet": action}, spec, "", "127.0.0.1")
    assert result.outcome is Outcome.SUCCESS
    head = seen[0].decode()
    assert head.startswith("GET /h HTTP/1.1\r\n") and f"Host: 127.0.0.1:{port}" in head
    assert "User-Agent: kube-probe/1.37" in head and "X-Probe: yes" in head
    assert "Accept: text/plain" in head and "Accept: */*" not in head


async def test_http_connection_refused_and_timeout_read_as_go_errors() -> None:
    port = free_port()
    refused = await http_get(url(port, "/"), 1)
    assert refused.output == f'Get "http://127.0.0.1:{port}/": dial tcp 127.0.0.1:{port}: connect: connection refused'

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    quiet = server.sockets[0].getsockname()[1]
    try:
        slow = await http_get(url(quiet, "/"), 0.1)
    finally:
        server.close()
    assert slow.outcome is Outcome.FAILURE
    assert slow.output == (f'Get "http://127.0.0.1:{quiet}/": context deadline exceeded '
                           "(Client.Timeout exceeded while awaiting headers)")


async def test_tcp_connects_or_fails_like_go() -> None:
    async with http_server({}) as port:
        assert (await run_tcp("127.0.0.1", port, 1)).outcome is Outcome.SUCCESS
    closed = free_port()
    failed = await run_tcp("127.0.0.1", closed, 1)
    assert failed.output == f"dial tcp 127.0.0.1:{closed}: connect: connection refused"


def test_ports_by_number_name_or_digits() -> None:
    spec = {"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port(80, spec) == 80 and resolve_port("http", spec) == 8080 and resolve_port("81", spec) == 81
    with pytest.raises(ActionError, match="couldn't find port: metrics"):
        resolve_port("metrics", spec)
    with pytest.raises(ActionError):
        resolve_port(70000, spec)
    request = http_request({"port": 80, "host": "example.test", "scheme": "HTTPS", "path": "x"}, spec, "10.0.0.1",
                           "kube-probe/1.37")
    assert request.url == "https://example.test:80/x"


class TimingOut(ScriptedRuntime):
    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 0) -> ExecResult:
        raise RuntimeFailure(f"command {cmd!r} timed out after {timeout:g}s")


async def test_exec_outcome_output_and_timeout() -> None:
    runtime = ScriptedRuntime()
    sandbox_config = PodSandboxConfig(PodSandboxMetadata("p", "default", "u"))
    sandbox = await runtime.run_pod_sandbox(sandbox_config)
    await runtime.pull_image(ImageSpec("nginx"))
    cid = await runtime.create_container(sandbox, ContainerConfig(ContainerMetadata("web"), "nginx"), sandbox_config)
    runtime.answers["check"] = (2, b"out and err")
    failed = await run_exec(runtime, cid, ["check"], 1)
    assert (failed.outcome, failed.output) == (Outcome.FAILURE, "out and err")
    assert (await run_exec(runtime, cid, ["other"], 1)).outcome is Outcome.SUCCESS
    timed_out = await run_exec(TimingOut(), cid, ["sh", "-c", "sleep 9"], 1)
    assert (timed_out.outcome, timed_out.output) == (Outcome.FAILURE, 'command "sh -c sleep 9" timed out')


async def test_https_probes_do_not_verify_the_certificate(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path, ["127.0.0.1"])  # signed by a CA the prober has never seen
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        action = {"scheme": "HTTPS", "port": port, "path": "/"}
        result = await run_probe_action(ScriptedRuntime(), {"httpGet": action}, {"name": "web"}, "", "127.0.0.1")
    finally:
        server.close()
    assert (result.outcome, result.output) == (Outcome.SUCCESS, "secure")
