"""The handler actions probes and lifecycle hooks share: exec in the container, an HTTP GET, a TCP connect.

The kubelet runs the same three actions for liveness, readiness and startup probes (``pkg/probe``) and for
postStart/preStop hooks (``lifecycle/handlers.go``); they differ only in what a result means. Here each action
returns an ``ActionResult`` whose ``outcome`` is the probe package's (success, warning, failure, unknown) and
whose ``output`` is the text the kubelet puts in its events, worded as the Go kubelet words it (``HTTP probe
failed with statuscode: 500``, ``dial tcp 10.42.0.5:80: connect: connection refused``). Something that keeps
the action from running at all (an unknown port name) raises ``ActionError``, the kubelet's "probe errored".

HTTP is a small HTTP/1.1 client on asyncio streams rather than a library: the kubelet's semantics (2xx
succeeds, a redirect to the same host is followed, one elsewhere is a success with a warning, at most 10 KiB
of body read, TLS never verified) are easier to keep exact than to coax out of a general client.
"""

from __future__ import annotations

import asyncio
import errno
import json
import ssl
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urljoin, urlsplit

from .runtime.interface import Runtime, RuntimeFailure

JSON = dict[str, Any]
MAX_OUTPUT = 10 * 1024  # the kubelet reads at most this much of a command's output or a response's body
MAX_REDIRECTS = 10
KUBE_VERSION = "1.37"


class Outcome(StrEnum):
    SUCCESS = "success"
    WARNING = "warning"  # counts as success; the kubelet records a ProbeWarning event
    FAILURE = "failure"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ActionResult:
    outcome: Outcome
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.SUCCESS, Outcome.WARNING)


class ActionError(Exception):
    """The action could not be run (its port names no container port, it has no handler...)."""


def go_quote(text: str) -> str:
    """Go's ``%q`` of a plain string (close enough: JSON escapes what Go escapes for printable text)."""
    return json.dumps(text, ensure_ascii=False)


def resolve_port(port: int | str | None, spec: JSON) -> int:
    """A probe's or hook's port: a number, or the name of one of the container's ports (else a number in text)."""
    if isinstance(port, int):
        number = port
    elif isinstance(port, str):
        named = [p.get("containerPort") for p in spec.get("ports") or [] if p.get("name") == port]
        if named:
            number = int(named[0])
        elif port.isdigit():
            number = int(port)
        else:
            raise ActionError(f"couldn't find port: {port} in {spec.get('name', '')}")
    else:
        raise ActionError("port is not set")
    if not 0 < number < 65536:
        raise ActionError(f"invalid port number: {number}")
    return number


def _dial_error(host: str, port: int, err: BaseException) -> str:
    """How Go's net.Dial reports a failure: ``dial tcp H:P: connect: connection refused``."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(err, TimeoutError):
        return f"dial tcp {address}: i/o timeout"
    if isinstance(err, OSError) and err.errno is not None:
        words = {errno.ECONNREFUSED: "connection refused", errno.EHOSTUNREACH: "no route to host",
                 errno.ENETUNREACH: "network is unreachable", errno.ECONNRESET: "connection reset by peer"}
        text = words.get(err.errno) or (err.strerror or str(err)).lower()
        return f"dial tcp {address}: connect: {text}"
    return f"dial tcp {address}: {err}"


# -- exec -------------------------------------------------------------------------------------------------

async def run_exec(runtime: Runtime, container_id: str, command: list[str], timeout: float) -> ActionResult:
    """Run ``command`` in the container: exit 0 succeeds, anything else fails with the command's output."""
    try:
        result = await runtime.exec_sync(container_id, command, timeout)
    except RuntimeFailure as err:
        if "timed out" in str(err):
            return ActionResult(Outcome.FAILURE, f"command {go_quote(' '.join(command))} timed out")
        raise ActionError(str(err)) from err
    output = (result.stdout + result.stderr)[:MAX_OUTPUT].decode("utf-8", "replace")
    return ActionResult(Outcome.SUCCESS if result.exit_code == 0 else Outcome.FAILURE, output)


# -- tcp --------------------------------------------------------------------------------------------------

async def run_tcp(host: str, port: int, timeout: float) -> ActionResult:
    """Open (and close) a TCP connection to ``host:port``."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as err:
        return ActionResult(Outcome.FAILURE, _dial_error(host, port, err))
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return ActionResult(Outcome.SUCCESS)


# -- http -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HTTPRequest:
    url: str
    headers: tuple[tuple[str, str], ...] = ()


def http_request(action: JSON, spec: JSON, pod_ip: str, user_agent: str) -> HTTPRequest:
    """The request a probe's or hook's ``httpGet`` describes (host defaults to the Pod IP)."""
    scheme = str(action.get("scheme") or "HTTP").lower()
    host = action.get("host") or pod_ip
    if not host:
        raise ActionError("the pod has no IP address yet")
    port = resolve_port(action.get("port"), spec)
    path = str(action.get("path") or "")
    if path and not path.startswith("/"):
        path = "/" + path
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    headers = [("User-Agent", user_agent), ("Accept", "*/*")]
    for header in action.get("httpHeaders") or []:
        name = str(header.get("name", ""))
        headers = [(n, v) for n, v in headers if n.lower() != name.lower()] + [(name, str(header.get("value", "")))]
    return HTTPRequest(f"{scheme}://{netloc}{path}", tuple(headers))


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while len(body) < MAX_OUTPUT:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            body += await reader.readexactly(size)
            await reader.readline()
        return body[:MAX_OUTPUT]
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        return await reader.readexactly(min(int(length), MAX_OUTPUT))
    body = b""
    while len(body) < MAX_OUTPUT:
        chunk = await reader.read(MAX_OUTPUT - len(body))
        if not chunk:
            break
        body += chunk
    return body


async def get_once(url: str, headers: tuple[tuple[str, str], ...]) -> tuple[int, dict[str, str], bytes]:
    """One GET, no redirects followed: (status code, headers by lower-case name, at most 10 KiB of body)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    context: ssl.SSLContext | None = None
    if parts.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # as the kubelet: probes never verify certificates
    try:
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
    except OSError as err:
        raise ConnectionError(_dial_error(host, port, err)) from err
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target} HTTP/1.1"]
        if not any(n.lower() == "host" for n, _ in headers):
            lines.append(f"Host: {parts.netloc}")
        lines += [f"{n}: {v}" for n, v in headers] + ["Connection: close", "", ""]
        writer.write("\r\n".join(lines).encode("latin-1"))
        await writer.drain()
        status_line = await reader.readline()
        fields = status_line.decode("latin-1").split()
        if len(fields) < 2 or not fields[1].isdigit():
            raise ConnectionError("malformed HTTP response " + go_quote(status_line.decode("latin-1").strip()))
        response: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            response[name.strip().lower()] = value.strip()
        return int(fields[1]), response, await _read_body(reader, response)
    finally:
        writer.close()


async def http_get(request: HTTPRequest, timeout: float) -> ActionResult:
    """GET ``request``: 2xx succeeds, 3xx to another host succeeds with a warning, anything else fails."""
    url = request.url
    headers = request.headers
    try:
        async with asyncio.timeout(timeout):
            for _ in range(MAX_REDIRECTS + 1):
                code, response, body = await get_once(url, headers)
                location = response.get("location")
                if 300 <= code < 400 and location and code != 304:
                    target = urljoin(url, location)
                    if urlsplit(target).hostname == urlsplit(url).hostname:
                        url = target
                        continue
                break
            else:
                return ActionResult(Outcome.FAILURE, f'Get {go_quote(url)}: stopped after {MAX_REDIRECTS} redirects')
    except TimeoutError:
        return ActionResult(Outcome.FAILURE, f"Get {go_quote(url)}: context deadline exceeded "
                                             "(Client.Timeout exceeded while awaiting headers)")
    except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError) as err:
        return ActionResult(Outcome.FAILURE, f"Get {go_quote(url)}: {err or type(err).__name__}")
    text = body.decode("utf-8", "replace")
    if 200 <= code < 300:
        return ActionResult(Outcome.SUCCESS, text)
    if 300 <= code < 400:
        return ActionResult(Outcome.WARNING, f"Probe terminated redirects, Response body: {text}")
    return ActionResult(Outcome.FAILURE, f"HTTP probe failed with statuscode: {code}")


# -- a probe's handler ------------------------------------------------------------------------------------

async def run_probe_action(runtime: Runtime, probe: JSON, spec: JSON, container_id: str,
                           pod_ip: str) -> ActionResult:
    """Run the handler of a probe (exec, httpGet or tcpSocket) once, within its ``timeoutSeconds``."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    if probe.get("exec") is not None:
        return await run_exec(runtime, container_id, list(probe["exec"].get("command") or []), timeout)
    if probe.get("httpGet") is not None:
        request = http_request(probe["httpGet"], spec, pod_ip, f"kube-probe/{KUBE_VERSION}")
        return await http_get(request, timeout)
    if probe.get("tcpSocket") is not None:
        action = probe["tcpSocket"]
        host = action.get("host") or pod_ip
        if not host:
            raise ActionError("the pod has no IP address yet")
        return await run_tcp(host, resolve_port(action.get("port"), spec), timeout)
    if probe.get("grpc") is not None:
        raise ActionError("grpc probes are not supported by this node")
    raise ActionError("missing probe handler")
