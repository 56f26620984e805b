"""The kubelet's HTTP server: container logs, exec, attach and port-forward, for the API server to proxy.

Users never talk to it: ``kubectl logs|exec|attach|port-forward`` go to the API server, which validates the
request, finds the node (``status.daemonEndpoints.kubeletEndpoint.Port`` at the node's address) and relays to
these paths, kube's kubelet paths:

* ``GET /containerLogs/{namespace}/{pod}/{container}?follow&previous&timestamps&tailLines&sinceSeconds&
  sinceTime&limitBytes`` — ``text/plain``, chunked; with ``follow`` it ends when the container does;
* ``/exec/{namespace}/{pod}/{container}?command=..&stdin=1&stdout=1&stderr=1&tty=1`` and
  ``/attach/{namespace}/{pod}/{container}?...`` — WebSocket, ``v5.channel.k8s.io`` or ``v4.channel.k8s.io``
  (``remotecommand``);
* ``/portForward/{namespace}/{pod}`` — WebSocket, ``SPDY/3.1+portforward.k8s.io``, or ``v4.channel.k8s.io``
  with ``?port=80`` (``portforward``);
* ``GET /healthz``.

Errors before an upgrade are plain text with the kubelet's status codes and words (``container not found
("c")``, ``container "c" in pod "p" is waiting to start: ContainerCreating``); the API server passes them on.

The link is deliberately simple: plain HTTP, and every request must carry ``Authorization: Bearer <token>``
with the token shared with the API server (``KubeletServerSettings.token``; empty disables the check, for
tests). One server serves every node of one ``NodeAgent`` (the simulator's thousands included): a Pod's node
is found from its ``spec.nodeName``. A node the agent has stopped answers 503, as a dead machine would fail.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from nanokube.client.interface import JSON
from nanokube.util.timeutil import parse_rfc3339

from . import portforward, remotecommand
from .agent import AgentNode, NodeAgent
from .runtime.interface import ContainerState, LogOptions, PortStream, RuntimeFailure, SandboxState

log = logging.getLogger(__name__)
# A Node annotation naming the host its kubelet server listens on, when the Node's addresses are not
# reachable from the API server (simulated nodes); the API server's streaming proxy reads it.
KUBELET_ADDRESS_ANNOTATION = "nanokube.io/kubelet-address"


@dataclass
class KubeletServerSettings:
    host: str = "127.0.0.1"
    port: int = 10250  # 0: any free port (``bound_port`` says which)
    token: str = ""  # the bearer token the API server presents; empty: no authentication (tests only)


class HttpError(Exception):
    """An error answered before any upgrade, as plain text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _container_names(pod: JSON) -> set[str]:
    spec = pod.get("spec") or {}
    return {c.get("name", "") for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or []}


def log_container_id(pod: JSON, status: JSON, container: str, previous: bool) -> str:
    """The runtime id of the container whose log is wanted, or HttpError(400) in the kubelet's words."""
    name = pod["metadata"]["name"]
    found = next((s for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")
                  for s in status.get(key) or [] if s.get("name") == container), None)
    if found is None:
        raise HttpError(400, f'container "{container}" in pod "{name}" is not available')
    state, last = found.get("state") or {}, (found.get("lastState") or {}).get("terminated")
    if previous:
        if not last or not last.get("containerID"):
            raise HttpError(400, f'previous terminated container "{container}" in pod "{name}" not found')
        cid = last["containerID"]
    elif "running" in state:
        cid = found.get("containerID", "")
    elif "terminated" in state:
        cid = state["terminated"].get("containerID") or (last or {}).get("containerID") or ""
        if not cid:
            raise HttpError(400, f'container "{container}" in pod "{name}" is terminated')
    elif last and last.get("containerID"):
        cid = last["containerID"]
    elif "waiting" in state:
        reason = (state["waiting"] or {}).get("reason", "")
        detail = {"ErrImagePull": "image can't be pulled",
                  "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
        raise HttpError(400, f'container "{container}" in pod "{name}" is waiting to start: {detail}')
    else:
        raise HttpError(400, f'container "{container}" in pod "{name}" is waiting to start - no logs yet')
    return cid.partition("://")[2] or cid


def log_options(query: dict[str, str], now: Callable[[], float] = time.time) -> LogOptions:
    """PodLogOptions from the query; ValueError when a number or time does not parse."""
    def number(key: str) -> int | None:
        return int(query[key]) if query.get(key) else None

    since_seconds = number("sinceSeconds")
    since_time = parse_rfc3339(query["sinceTime"]).timestamp() if query.get("sinceTime") else None
    if since_seconds is not None:
        since_time = now() - since_seconds
    return LogOptions(follow=remotecommand.flag(query.get("follow")), tail_lines=number("tailLines"),
                      since_time=since_time, timestamps=remotecommand.flag(query.get("timestamps")),
                      limit_bytes=number("limitBytes"))


class KubeletServer:
    def __init__(self, agent: NodeAgent, settings: KubeletServerSettings | None = None) -> None:
        self.agent = agent
        self.settings = settings or KubeletServerSettings()
        self.bound_port = self.settings.port

    # -- HTTP plumbing -----------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        for verb in ("exec", "attach"):
            app.router.add_route("*", f"/{verb}/{{namespace}}/{{pod}}/{{container}}", self._remote_command)
        app.router.add_route("*", "/portForward/{namespace}/{pod}", self._port_forward)
        return app

    @web.middleware
    async def _guard(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        token = self.settings.token
        if token and request.path != "/healthz":
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
                return web.Response(status=401, text="Unauthorized")
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except HttpError as err:
            return web.Response(status=err.status, text=err.message)

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    async def run(self, *, stop: asyncio.Event, started: Callable[[int], None] | None = None) -> None:
        """Serve until ``stop``; ``started`` gets the bound port once the socket listens."""
        runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0,
                               handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.bound_port = server.sockets[0].getsockname()[1]
        log.info("kubelet server listening on %s:%d", self.settings.host, self.bound_port)
        if started is not None:
            started(self.bound_port)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    # -- finding things ----------------------------------------------------------------------------------
    def _pod(self, request: web.Request, missing: str) -> tuple[JSON, AgentNode]:
        namespace, name = request.match_info["namespace"], request.match_info["pod"]
        pod = self.agent.pods.get(f"{namespace}/{name}")
        node = self.agent.nodes.get((pod or {}).get("spec", {}).get("nodeName", "")) if pod else None
        if pod is None or node is None:
            raise HttpError(404, missing.format(name=name))
        if node.stopped:
            raise HttpError(503, f"node {node.name} is not responding")
        return pod, node

    async def _running_container(self, node: AgentNode, pod: JSON, container: str) -> str:
        runtime = node.runtime
        sandboxes = await runtime.list_pod_sandboxes(pod["metadata"]["uid"])
        for sandbox in sorted(sandboxes, key=lambda s: s.created_at, reverse=True):
            for c in await runtime.list_containers(sandbox.id):
                if c.metadata.name == container and c.state is ContainerState.RUNNING:
                    return c.id
        raise HttpError(500, f'container not found ("{container}")')

    async def _ready_sandbox(self, node: AgentNode, pod: JSON) -> str:
        meta = pod["metadata"]
        for sandbox in await node.runtime.list_pod_sandboxes(meta["uid"]):
            if sandbox.state is SandboxState.READY:
                return sandbox.id
        raise HttpError(500, f'pod not found ("{meta["name"]}_{meta.get("namespace", "")}")')

    # -- logs --------------------------------------------------------------------------------------------
    async def _logs(self, request: web.Request) -> web.StreamResponse:
        pod, node = self._pod(request, 'pod "{name}" does not exist')
        container = request.match_info["container"]
        if container not in _container_names(pod):
            raise HttpError(404, f'container "{container}" not found in pod "{pod["metadata"]["name"]}"')
        try:
            options = log_options(dict(request.query))
        except ValueError as err:
            raise HttpError(400, '{"message": "Unable to decode query."}') from err
        status = self.agent.status.cached(pod["metadata"]["uid"]) or pod.get("status") or {}
        cid = log_container_id(pod, status, container, remotecommand.flag(request.query.get("previous")))
        chunks = aiter(node.runtime.logs(cid, options))
        try:
            first = await anext(chunks, None)
        except RuntimeFailure as err:
            raise HttpError(400, f"unable to retrieve container logs for {cid}: {err}") from err
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await _write_limited(response, first, chunks, options.limit_bytes)
        await response.write_eof()
        return response

    # -- exec and attach ---------------------------------------------------------------------------------
    async def _remote_command(self, request: web.Request) -> web.StreamResponse:
        attach = request.path.startswith("/attach/")
        try:
            options = remotecommand.stream_options(request.query)
        except ValueError as err:
            raise HttpError(400, str(err)) from err
        pod, node = self._pod(request, "pod does not exist")
        container = request.match_info["container"]
        cid = await self._running_container(node, pod, container)
        ws = await _upgrade(request, remotecommand.PROTOCOLS)
        runtime = node.runtime
        if attach:
            await remotecommand.serve(
                ws, options, lambda: runtime.attach(cid, stdin=options.stdin, tty=options.tty),
                lambda code: remotecommand.success_status(), failure="error attaching to container")
        else:
            command = request.query.getall("command", [])
            await remotecommand.serve(
                ws, options, lambda: runtime.exec(cid, command, stdin=options.stdin, tty=options.tty),
                lambda code: remotecommand.exit_status(code, command))
        return ws

    # -- port-forward ------------------------------------------------------------------------------------
    async def _port_forward(self, request: web.Request) -> web.StreamResponse:
        pod, node = self._pod(request, "pod does not exist")
        protocol = remotecommand.choose_protocol(request.headers.get("Sec-WebSocket-Protocol"),
                                                 portforward.PROTOCOLS)
        ports: list[int] = []
        if protocol == portforward.V4:
            try:
                ports = portforward.parse_ports(request.query_string)
            except ValueError as err:
                raise HttpError(400, str(err)) from err
        sandbox_id = await self._ready_sandbox(node, pod)
        ws = await _upgrade(request, portforward.PROTOCOLS)
        runtime = node.runtime

        async def connect(port: int) -> PortStream:
            return await runtime.port_forward(sandbox_id, port)

        def describe(port: int, err: Exception) -> str:
            return f"error forwarding port {port} to pod {sandbox_id}, uid : {err}"

        if ws.ws_protocol == portforward.SPDY_TUNNEL:
            await portforward.serve_spdy(ws, connect, describe)
        else:
            await portforward.serve_v4(ws, ports, connect, describe)
        return ws


async def _upgrade(request: web.Request, protocols: tuple[str, ...]) -> web.WebSocketResponse:
    """Accept the WebSocket with the first offered protocol we speak; HttpError if that is impossible."""
    ws = web.WebSocketResponse(protocols=protocols, autoping=True, max_msg_size=0)
    if not ws.can_prepare(request).ok:
        raise HttpError(400, "Upgrade request required")
    offered = request.headers.get("Sec-WebSocket-Protocol")
    if remotecommand.choose_protocol(offered, protocols) is None:
        raise HttpError(400, f"requested protocol(s) are not supported: [{offered or ''}]; supports "
                             f"[{' '.join(protocols)}]")
    await ws.prepare(request)
    return ws


async def _write_limited(response: web.StreamResponse, first: bytes | None, rest: AsyncIterator[bytes],
                         limit: int | None) -> None:
    """Copy log chunks to the client, stopping after ``limit`` bytes (if the runtime did not already)."""
    sent = 0
    chunk = first
    while chunk is not None:
        if limit is not None:
            chunk = chunk[:max(limit - sent, 0)]
        if chunk:
            await response.write(chunk)
            sent += len(chunk)
        if limit is not None and sent >= limit:
            return
        chunk = await anext(rest, None)
