"""Port-forward over WebSocket, both ways clients speak it: kubectl's SPDY tunnel and the v4 channel protocol.

* ``SPDY/3.1+portforward.k8s.io`` (kubectl 1.37): the binary messages carry one SPDY/3.1 byte stream
  (message boundaries mean nothing). For every local connection kubectl opens two streams with the headers
  ``streamtype: error|data``, ``port`` and ``requestid``; the server answers each with SYN_REPLY, and once it
  has both streams of a request it connects to the port in the Pod and copies bytes both ways on the data
  stream. A failure is written as text on the error stream. When the Pod side ends, the server finishes the
  data stream and then the error stream (kubectl waits for the error stream's end before it lets go of the
  connection); a client's FIN on the data stream half-closes the Pod connection where the runtime can.
* ``v4.channel.k8s.io`` (the Python client): ports come in the query (``port=80,8080``); for the i-th port,
  channel 2i carries data and 2i+1 errors, and the server first sends on both the 3-byte frame
  ``[channel, port & 0xff, port >> 8]``. Each port is one connection, opened at once; the socket closes when
  every port's connection has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from aiohttp import WSMsgType, web

from . import spdy
from .runtime.interface import PortStream, RuntimeFailure

log = logging.getLogger(__name__)
SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (SPDY_TUNNEL, V4)
CHUNK = 32 * 1024

Connect = Callable[[int], Awaitable[PortStream]]
Describe = Callable[[int, Exception], str]  # the error text for a port that could not be forwarded


def parse_ports(query_string: str) -> list[int]:
    """The ``port`` query values (repeated or comma-separated); ValueError with the kubelet's words."""
    values = parse_qs(query_string, keep_blank_values=True).get("port")
    if not values:
        raise ValueError('query parameter "port" is required')
    ports: list[int] = []
    for value in values:
        if not value:
            raise ValueError('query parameter "port" cannot be empty')
        for part in value.split(","):
            if not part.isdigit() or int(part) > 65535:
                raise ValueError(f'unable to parse "{value}" as a port')
            if int(part) < 1:
                raise ValueError(f'port "{value}" must be > 0')
            ports.append(int(part))
    return ports


async def _close_write(stream: PortStream) -> None:
    """Half-close toward the Pod if the runtime's stream can (``close_write``); else leave it open."""
    close_write = getattr(stream, "close_write", None)
    if close_write is not None:
        with contextlib.suppress(OSError):
            await close_write()


async def _close(stream: PortStream) -> None:
    with contextlib.suppress(OSError, RuntimeError):
        await stream.close()


# -- v4 channels ------------------------------------------------------------------------------------------

class _Sender:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.lock = asyncio.Lock()

    async def send(self, data: bytes) -> None:
        async with self.lock:
            if not self.ws.closed:
                await self.ws.send_bytes(data)


async def serve_v4(ws: web.WebSocketResponse, ports: list[int], connect: Connect, describe: Describe) -> None:
    sender = _Sender(ws)
    inboxes: list[asyncio.Queue[bytes | None]] = [asyncio.Queue() for _ in ports]
    for i, port in enumerate(ports):
        prefix = port.to_bytes(2, "little")
        await sender.send(bytes([2 * i]) + prefix)
        await sender.send(bytes([2 * i + 1]) + prefix)
    forwards = [asyncio.ensure_future(_forward_v4(sender, i, port, inboxes[i], connect, describe))
                for i, port in enumerate(ports)]
    reader = asyncio.ensure_future(_read_v4(ws, inboxes))
    every_port: asyncio.Future[list[object]] = asyncio.ensure_future(
        asyncio.gather(*forwards, return_exceptions=True))
    tasks: list[asyncio.Future[object]] = [*forwards, every_port, reader]  # type: ignore[list-item]
    try:
        # Done when every port's connection has ended, or when the client leaves.
        await asyncio.wait(tasks[-2:], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await ws.close()


async def _read_v4(ws: web.WebSocketResponse, inboxes: list[asyncio.Queue[bytes | None]]) -> None:
    async for msg in ws:
        if msg.type is WSMsgType.BINARY and msg.data:
            channel, payload = msg.data[0], msg.data[1:]
            if channel % 2 == 0 and channel // 2 < len(inboxes) and payload:
                inboxes[channel // 2].put_nowait(payload)
    for inbox in inboxes:
        inbox.put_nowait(None)


async def _forward_v4(sender: _Sender, index: int, port: int, inbox: asyncio.Queue[bytes | None],
                      connect: Connect, describe: Describe) -> None:
    data_channel, error_channel = bytes([2 * index]), bytes([2 * index + 1])
    try:
        stream = await connect(port)
    except (RuntimeFailure, OSError) as err:
        await sender.send(error_channel + describe(port, err).encode())
        return

    async def upstream() -> None:
        while (chunk := await inbox.get()) is not None:
            await stream.write(chunk)
        await _close_write(stream)

    pump = asyncio.ensure_future(upstream())
    try:
        while chunk := await stream.read(CHUNK):
            await sender.send(data_channel + chunk)
    except (OSError, RuntimeFailure) as err:
        await sender.send(error_channel + describe(port, err).encode())
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
        await _close(stream)


# -- SPDY -------------------------------------------------------------------------------------------------

def _data_frame(stream_id: int, chunk: bytes) -> Callable[[], bytes]:
    return lambda: spdy.FrameWriter.data(stream_id, chunk)


@dataclass
class _Stream:
    id: int
    headers: spdy.Headers
    inbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    closed_by_us: bool = False  # we sent FIN (or RST)
    reset: bool = False  # the client reset it


class SpdySession:
    """The server side of one SPDY/3.1 port-forward session; ``send`` writes bytes to the client."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], connect: Connect, describe: Describe) -> None:
        self._send_raw = send
        self.connect = connect
        self.describe = describe
        self.parser = spdy.FrameParser()
        self.writer = spdy.FrameWriter()
        self._lock = asyncio.Lock()
        self.streams: dict[int, _Stream] = {}
        self._pairs: dict[str, dict[str, _Stream]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def _send(self, encode: Callable[[], bytes]) -> None:
        # Encoding inside the lock keeps compressed header blocks in the order the client decompresses them.
        async with self._lock:
            await self._send_raw(encode())

    async def feed(self, data: bytes) -> bool:
        """Handle received bytes; False once the client has said GOAWAY."""
        for frame in self.parser.feed(data):
            if isinstance(frame, spdy.GoAway):
                return False
            await self._handle(frame)
        return True

    async def _handle(self, frame: spdy.Frame) -> None:
        if isinstance(frame, spdy.SynStream):
            await self._open(frame)
        elif isinstance(frame, spdy.DataFrame):
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                if frame.data:
                    stream.inbox.put_nowait(frame.data)
                if frame.fin:
                    stream.inbox.put_nowait(None)
        elif isinstance(frame, spdy.RstStream):
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                stream.reset = True
                stream.inbox.put_nowait(None)
        elif isinstance(frame, spdy.Ping):
            await self._send(lambda: self.writer.ping(frame.id))

    async def _open(self, frame: spdy.SynStream) -> None:
        stream = _Stream(frame.stream_id, frame.headers)
        self.streams[stream.id] = stream
        await self._send(lambda: self.writer.syn_reply(stream.id))
        if frame.fin:
            stream.inbox.put_nowait(None)
        kind = spdy.header(frame.headers, "streamtype")
        request = spdy.header(frame.headers, "requestid")
        if kind not in ("error", "data"):
            await self._finish(stream, reset=True)
            return
        pair = self._pairs.setdefault(request, {})
        pair[kind] = stream
        if len(pair) == 2:
            del self._pairs[request]
            task = asyncio.ensure_future(self._forward(pair["data"], pair["error"]))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _finish(self, stream: _Stream, *, message: bytes = b"", reset: bool = False) -> None:
        """Send our last frame on ``stream`` (FIN, with ``message``; or RST) unless it is over already."""
        if stream.closed_by_us or stream.reset:
            return
        stream.closed_by_us = True
        if reset:
            await self._send(lambda: self.writer.rst_stream(stream.id, spdy.CANCEL))
        else:
            await self._send(lambda: self.writer.data(stream.id, message, fin=True))

    async def _forward(self, data: _Stream, error: _Stream) -> None:
        port_text = spdy.header(data.headers, "port")
        try:
            port = int(port_text)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            await self._finish(error, message=f'invalid port "{port_text}"'.encode())
            await self._finish(data)
            return
        try:
            target = await self.connect(port)
        except (RuntimeFailure, OSError) as err:
            await self._finish(error, message=self.describe(port, err).encode())
            await self._finish(data)
            return
        pump = asyncio.ensure_future(self._upstream(data, target))
        message = b""
        try:
            while chunk := await target.read(CHUNK):
                if data.reset:
                    break
                await self._send(_data_frame(data.id, chunk))
        except (OSError, RuntimeFailure) as err:
            message = self.describe(port, err).encode()
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            await _close(target)
        await self._finish(data)
        await self._finish(error, message=message)

    async def _upstream(self, data: _Stream, target: PortStream) -> None:
        """Client bytes to the Pod; a client FIN half-closes, a reset closes."""
        while (chunk := await data.inbox.get()) is not None:
            await target.write(chunk)
        if data.reset:
            await _close(target)
        else:
            await _close_write(target)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def serve_spdy(ws: web.WebSocketResponse, connect: Connect, describe: Describe) -> None:
    """Serve SPDY/3.1 port-forwarding tunnelled in a prepared WebSocket until the client leaves."""
    session = SpdySession(ws.send_bytes, connect, describe)
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.BINARY:
                continue
            if not await session.feed(msg.data):
                break
    except spdy.SpdyError as err:
        log.warning("port-forward: %s; closing the session", err)
    finally:
        await session.close()
        await ws.close()

