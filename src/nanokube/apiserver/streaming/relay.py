"""Relaying a streaming request to a kubelet: a log stream as chunked text, a WebSocket frame for frame.

The API server understands none of the streaming protocols: the kubelet negotiates the WebSocket subprotocol
(it sees the client's offer) and speaks v4/v5 channels or tunnelled SPDY; the relay copies binary and text
messages both ways, answers pings on each leg itself (aiohttp's autoping), and passes the close code on.
When the kubelet refuses an upgrade, the same request is repeated without the upgrade to read the kubelet's
error text (aiohttp drops the body of a refused handshake), and that answer goes to the client, as kube's
upgrade-aware proxy passes the kubelet's answer through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
from aiohttp import WSMsgType, web

from nanokube.api.errors import ApiError, BadRequest, InternalError, NotFound

log = logging.getLogger(__name__)
UPGRADE_REQUIRED = "Upgrade request required"


def kubelet_error(status: int, text: str, name: str) -> ApiError:
    """A kubelet's failure as the API server reports it (kube's GenericHttpResponseChecker)."""
    text = text.strip()
    if status == 400:
        return BadRequest(text)
    if status == 404:
        return NotFound(f"the server could not find the requested resource ( pods/log {name})",
                        details={"name": name, "kind": "pods/log", "causes": [{"reason": "UnexpectedServerResponse",
                                                                               "message": text}]})
    if status == 500:
        return InternalError(f"Internal error occurred: {text}", details={"causes": [{"message": text}]})
    err = InternalError(f"an error on the server ({text}) has prevented the request from succeeding")
    err.code = status
    return err


def unreachable(url: str, err: BaseException) -> InternalError:
    reason = str(err) or type(err).__name__
    return InternalError(f'Internal error occurred: Get "{url}": {reason}', details={"causes": [{"message": reason}]})


async def _watch_client(request: web.Request, task: asyncio.Task[None]) -> None:
    """Cancel ``task`` once the client has gone (the server does not cancel handlers by itself)."""
    while not task.done():
        transport = request.transport
        if transport is None or transport.is_closing():
            task.cancel()
            return
        await asyncio.sleep(1.0)


async def relay_logs(request: web.Request, session: aiohttp.ClientSession, url: str, headers: dict[str, str],
                     name: str) -> web.StreamResponse:
    try:
        upstream = await session.get(url, headers=headers)
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        raise unreachable(url, err) from err
    async with upstream:
        if upstream.status != 200:
            raise kubelet_error(upstream.status, await upstream.text(), name)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)

        async def copy() -> None:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)

        task = asyncio.ensure_future(copy())
        watcher = asyncio.ensure_future(_watch_client(request, task))
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled, not just the copy (the client left)
        except (aiohttp.ClientError, ConnectionError):
            log.debug("log stream from %s ended early", url)
        finally:
            watcher.cancel()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await response.write_eof()
        return response


async def precheck(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> web.Response | None:
    """Ask the kubelet without upgrading; its error as a response to pass on, or None if it only wants the
    upgrade (the request is otherwise fine)."""
    try:
        async with session.get(url, headers=headers) as answer:
            text = await answer.text()
            if answer.status == 400 and text.strip() == UPGRADE_REQUIRED:
                return None
            return web.Response(status=answer.status, text=text, content_type="text/plain")
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        raise unreachable(url, err) from err


async def relay_websocket(request: web.Request, session: aiohttp.ClientSession, url: str,
                          headers: dict[str, str]) -> web.StreamResponse:
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    try:
        upstream = await session.ws_connect(url, protocols=offered, headers=headers, autoping=True,
                                            max_msg_size=0)
    except aiohttp.WSServerHandshakeError as err:
        refused = await precheck(session, url, headers)
        if refused is not None:
            return refused
        raise InternalError(f"Internal error occurred: the kubelet refused the upgrade: {err.message}") from err
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        raise unreachable(url, err) from err
    client = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else [], autoping=True,
                                   max_msg_size=0)
    try:
        await client.prepare(request)
        await _pump_both(client, upstream)
    finally:
        await upstream.close()
        await client.close()
    return client


async def _pump_both(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    up = asyncio.ensure_future(_pump(client, upstream))
    down = asyncio.ensure_future(_pump(upstream, client))
    try:
        done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        # One side closed: close the other with the same code and let its pump drain.
        if down in done:
            await client.close(code=upstream.close_code or 1000)
        else:
            await upstream.close(code=client.close_code or 1000)
        await asyncio.wait({up, down}, timeout=5.0)
    finally:
        for task in (up, down):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _pump(source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
    async for msg in source:
        if sink.closed:
            return
        if msg.type is WSMsgType.BINARY:
            await sink.send_bytes(msg.data)
        elif msg.type is WSMsgType.TEXT:
            await sink.send_str(msg.data)
        elif msg.type is WSMsgType.ERROR:
            return
