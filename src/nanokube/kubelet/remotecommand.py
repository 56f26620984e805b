"""exec and attach over WebSocket: the channel protocol ``v5.channel.k8s.io`` / ``v4.channel.k8s.io``.

Every binary message starts with a channel byte: 0 stdin (client to server), 1 stdout, 2 stderr, 3 the final
``metav1.Status`` as JSON, 4 terminal resizes (client to server, ``{"Width":W,"Height":H}``); v5 adds 255,
CLOSE, with the channel closed as the second byte (kubectl sends ``[255, 0]`` when its stdin ends). Client
messages may be binary or text frames (the Python client sends ``str`` stdin as text). As the
kubelet does, the server first sends an empty message on the lowest output channel it will use, relays the
session, then writes the Status on channel 3 and closes the socket normally:

* ``{"metadata":{},"status":"Success"}``;
* a non-zero exit: ``reason: NonZeroExitCode`` and the code as the message of a cause whose reason is
  ``ExitCode`` (kubectl exits with it, the Python client's ``returncode`` reads it);
* a command that could not start: an ``InternalError`` Status (kubectl prints its message).

If the client goes away first, relaying stops and stdin is closed; the command itself is left to end (a
session with a ``cancel()``, the fake runtime's, is cancelled instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import orjson
from aiohttp import WSMsgType, web

from .runtime.interface import ExecSession, RuntimeFailure

log = logging.getLogger(__name__)
V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


@dataclass(frozen=True)
class StreamOptions:
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    tty: bool = False


def flag(value: str | None) -> bool:
    """A query flag as the kubelet reads it ("1"; "true" is accepted too)."""
    return value is not None and value.lower() in ("1", "true")


def stream_options(query: Mapping[str, str]) -> StreamOptions:
    """The streams a request asks for; raises ValueError with the kubelet's words when it asks for none."""
    tty, stderr = flag(query.get("tty")), flag(query.get("stderr"))
    options = StreamOptions(flag(query.get("stdin")), flag(query.get("stdout")), stderr and not tty, tty)
    if not (options.stdin or options.stdout or options.stderr):
        raise ValueError("you must specify at least 1 of stdin, stdout, stderr")
    return options


def choose_protocol(offered: str | None, supported: tuple[str, ...]) -> str | None:
    """The first protocol the client offers that the server supports (kube's order of preference)."""
    for name in (p.strip() for p in (offered or "").split(",")):
        if name in supported:
            return name
    return None


# -- Status bodies ----------------------------------------------------------------------------------------

def success_status() -> bytes:
    return orjson.dumps({"metadata": {}, "status": "Success"})


def exit_status(code: int, command: list[str]) -> bytes:
    """The Status of a command that exited with ``code`` (Success for 0)."""
    if code == 0:
        return success_status()
    message = (f"command terminated with non-zero exit code: error executing command [{' '.join(command)}], "
               f"exit code {code}")
    return orjson.dumps({"metadata": {}, "status": "Failure", "message": message, "reason": "NonZeroExitCode",
                         "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}})


def internal_error_status(message: str) -> bytes:
    return orjson.dumps({"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {message}",
                         "reason": "InternalError", "details": {"causes": [{"message": message}]}, "code": 500})


# -- serving ----------------------------------------------------------------------------------------------

class ChannelSocket:
    """A prepared WebSocket speaking the channel protocol; sends are serialised."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.v5 = ws.ws_protocol == V5
        self._lock = asyncio.Lock()

    async def send(self, channel: int, data: bytes) -> None:
        async with self._lock:
            if not self.ws.closed:
                await self.ws.send_bytes(bytes([channel]) + data)


async def serve(ws: web.WebSocketResponse, options: StreamOptions, start: Callable[[], Awaitable[ExecSession]],
                finish: Callable[[int], bytes], *, failure: str = "error executing command in container") -> None:
    """Relay one exec/attach session over a prepared WebSocket, then send its Status and close."""
    sock = ChannelSocket(ws)
    first = STDOUT if options.stdout else STDERR if options.stderr else ERROR
    await sock.send(first, b"")
    try:
        session = await start()
    except RuntimeFailure as err:
        await sock.send(ERROR, internal_error_status(f"{failure}: {err}"))
        await ws.close()
        return
    reader = asyncio.ensure_future(_from_client(sock, session, options))
    writer = asyncio.ensure_future(_to_client(sock, session, options))
    finished = False
    try:
        done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        if writer in done:
            finished = True
            await sock.send(ERROR, finish(writer.result()))
            await ws.close()
    finally:
        for task in (reader, writer):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if options.stdin:
            with contextlib.suppress(Exception):
                await session.close_stdin()
        cancel = getattr(session, "cancel", None)  # a simulated session ends with its client; a real one runs on
        if cancel is not None and not finished:
            cancel()


async def _to_client(sock: ChannelSocket, session: ExecSession, options: StreamOptions) -> int:
    async for stream, data in session.output():
        if (stream == STDOUT and options.stdout) or (stream == STDERR and options.stderr):
            await sock.send(stream, data)
    return await session.wait()


async def _from_client(sock: ChannelSocket, session: ExecSession, options: StreamOptions) -> None:
    """Feed stdin and resizes to the session until the client closes the socket."""
    async for msg in sock.ws:
        # The Python client sends str stdin as text frames (channel byte first), bytes as binary ones.
        if msg.type is WSMsgType.TEXT:
            data: bytes = msg.data.encode()
        elif msg.type is WSMsgType.BINARY:
            data = msg.data
        else:
            continue
        if not data:
            continue
        channel, payload = data[0], data[1:]
        if channel == STDIN and options.stdin:
            await session.write_stdin(payload)
        elif channel == RESIZE:
            await _resize(session, payload)
        elif channel == CLOSE and sock.v5 and payload[:1] == bytes([STDIN]) and options.stdin:
            await session.close_stdin()


async def _resize(session: ExecSession, payload: bytes) -> None:
    for line in payload.splitlines():
        try:
            size = orjson.loads(line)
            await session.resize(int(size["Width"]), int(size["Height"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.debug("ignoring a malformed resize message %r", line)
