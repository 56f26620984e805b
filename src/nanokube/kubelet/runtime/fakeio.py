"""What a simulated container prints, when it ends, where its ports lead: the fake runtime's logs, exit waiters,
port-forward.

Logs are a line when the container starts, the lines of the Pod annotation ``sim.nanokube.io/log`` (or
``...log.<container>``), and a line when it exits. A port-forward connects to the loopback ``host:port`` of
the annotation ``sim.nanokube.io/port-forward-to`` (or ``...port-forward-to.<port>``), a server the user (or
a test) runs; other addresses are refused, so a simulated cluster never sends traffic off the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime

from .interface import ContainerState, ContainerStatus, LogOptions, RuntimeFailure

LOG = "sim.nanokube.io/log"
PORT_FORWARD_TO = "sim.nanokube.io/port-forward-to"


class ExitWaiters:
    """Futures of containers' exit codes, kept only for containers someone follows or attaches to; a waiter
    that gives up (its future cancelled) is dropped at once."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[asyncio.Future[int]]] = {}

    def wait(self, container_id: str, exit_code: int | None) -> asyncio.Future[int]:
        """A future of the exit code; ``exit_code`` is the code if the container has exited already."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if exit_code is not None:
            future.set_result(exit_code)
            return future
        waiters = self._waiting.setdefault(container_id, [])
        waiters.append(future)

        def forget(done: asyncio.Future[int]) -> None:
            if done.cancelled() and done in waiters:
                waiters.remove(done)
                if not waiters and self._waiting.get(container_id) is waiters:
                    del self._waiting[container_id]

        future.add_done_callback(forget)
        return future

    def wake(self, container_id: str, code: int) -> None:
        for future in self._waiting.pop(container_id, []):
            if not future.done():
                future.set_result(code)

    def __len__(self) -> int:
        return sum(len(w) for w in self._waiting.values())


# -- logs -------------------------------------------------------------------------------------------------

def log_lines(status: ContainerStatus, annotations: dict[str, str]) -> list[tuple[float, str]]:
    """A simulated container's log so far: (time, line) pairs, oldest first."""
    name = status.metadata.name
    started = status.started_at or status.created_at
    lines = [(started, f"simulated container {name} (image {status.image}) started")]
    text = annotations.get(f"{LOG}.{name}", annotations.get(LOG))
    if text:
        lines.extend((started, line) for line in text.splitlines())
    if status.state is ContainerState.EXITED:
        lines.append((status.finished_at, f"simulated container {name} exited with code {status.exit_code}"))
    return lines


def log_line(at: float, text: str, timestamps: bool) -> bytes:
    """One line as the kubelet serves it; timestamps are RFC 3339 with nine fraction digits, as kube's."""
    if not timestamps:
        return f"{text}\n".encode()
    whole = datetime.fromtimestamp(int(at), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    nanos = round((at - int(at)) * 1e9) % 1_000_000_000
    return f"{whole}.{nanos:09d}Z {text}\n".encode()


def select_lines(lines: list[tuple[float, str]], options: LogOptions) -> Iterator[bytes]:
    """The lines ``options`` asks for (sinceTime, tailLines, timestamps), cut at ``limit_bytes``."""
    if options.since_time is not None:
        lines = [(t, text) for t, text in lines if t >= options.since_time]
    if options.tail_lines is not None:
        lines = lines[-options.tail_lines:] if options.tail_lines > 0 else []
    budget = options.limit_bytes
    for at, text in lines:
        chunk = log_line(at, text, options.timestamps)
        if budget is not None:
            chunk, budget = chunk[:budget], budget - len(chunk)
        yield chunk
        if budget is not None and budget <= 0:
            return


# -- port-forward -----------------------------------------------------------------------------------------

class LoopbackStream:
    """A forwarded connection to the loopback target of a simulated Pod (a ``PortStream``, half-closable)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def read(self, n: int = 65536) -> bytes:
        return await self.reader.read(n)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close_write(self) -> None:
        """No more data to the target (a TCP half-close); it can still answer."""
        if self.writer.can_write_eof() and not self.writer.is_closing():
            with contextlib.suppress(OSError):
                self.writer.write_eof()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def connect_loopback(annotations: dict[str, str], port: int) -> LoopbackStream:
    """Connect where the Pod's ``sim.nanokube.io/port-forward-to`` says ``port`` goes."""
    target = annotations.get(f"{PORT_FORWARD_TO}.{port}") or annotations.get(PORT_FORWARD_TO)
    if not target:
        raise RuntimeFailure(f"failed to connect to localhost:{port} inside the simulated pod: connection "
                             f"refused (nothing listens in a simulated container; see {PORT_FORWARD_TO})")
    host, _, port_text = target.rpartition(":")
    host = host.strip("[]")
    if not _is_loopback(host) or not port_text.isdigit():
        raise RuntimeFailure(f"{PORT_FORWARD_TO} must be a loopback host:port, not {target!r}")
    try:
        reader, writer = await asyncio.open_connection(host, int(port_text))
    except OSError as err:
        raise RuntimeFailure(f"failed to connect to {target} for port {port}: {err}") from err
    return LoopbackStream(reader, writer)
