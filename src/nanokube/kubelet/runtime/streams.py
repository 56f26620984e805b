"""Streaming into native containers: exec (pipes or a terminal), attach, and port-forward.

* ``exec`` runs ``runc exec`` in the foreground, so its exit status is the command's. Without a terminal the
  command's stdio are pipes to the agent; with one, runc runs on a pseudo-terminal of ours and relays it to
  the terminal it allocates in the container.
* ``attach`` talks to the container's shim over its ``attach.sock`` (frames described in ``shim.py``). As with
  the kubelet's runtimes, an attach client that ends its stdin closes the container's stdin only when the
  container has ``stdinOnce`` (then the shim also closes it when that client goes); otherwise stdin stays open
  for the next attach.
* ``port_forward`` opens a TCP connection from inside the Pod's network namespace: a socket is created in a
  short-lived thread that entered the namespace with ``setns`` (which is per thread), then connected and used
  from the event loop like any other socket.

Unix socket paths are limited to 108 bytes and container directories are long, so the shim's socket is
reached through ``/proc/self/fd/<dir fd>/<name>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import secrets
import signal
import socket
import struct
import termios
import tty
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .interface import ExecResult, RuntimeFailure

FRAME = struct.Struct(">BI")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class PipeExecSession:
    """An exec whose stdio are pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def write_stdin(self, data: bytes) -> None:
        if self.proc.stdin is None:
            return
        with contextlib.suppress(ConnectionError):
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()

        async def pump(stream: asyncio.StreamReader | None, number: int) -> None:
            try:
                while stream is not None and (data := await stream.read(65536)):
                    await queue.put((number, data))
            finally:
                await queue.put(None)

        tasks = [asyncio.create_task(pump(self.proc.stdout, 1)), asyncio.create_task(pump(self.proc.stderr, 2))]
        try:
            open_streams = 2
            while open_streams:
                item = await queue.get()
                if item is None:
                    open_streams -= 1
                else:
                    yield item
        finally:
            for task in tasks:
                task.cancel()

    async def resize(self, width: int, height: int) -> None:
        return None

    async def wait(self) -> int:
        return await self.proc.wait()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def set_window(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class TtyExecSession:
    """An exec on a terminal: runc runs on a pseudo-terminal of ours and relays it to the one it gives the
    command; input and output both go through our master side (output is stream 1). A resize sets our size
    and tells runc (SIGWINCH), which passes it on."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int) -> None:
        self.proc = proc
        self.master = master
        os.set_blocking(master, False)

    async def write_stdin(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        while data:
            try:
                data = data[os.write(self.master, data):]
            except BlockingIOError:
                ready = loop.create_future()
                loop.add_writer(self.master, ready.set_result, None)
                try:
                    await ready
                finally:
                    loop.remove_writer(self.master)
            except OSError:
                return

    async def close_stdin(self) -> None:
        await self.write_stdin(b"\x04")

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    data = os.read(self.master, 65536)
                except BlockingIOError:
                    ready = loop.create_future()
                    loop.add_reader(self.master, _wake, ready)
                    try:
                        await ready
                    finally:
                        loop.remove_reader(self.master)
                    continue
                except OSError:  # EIO: the command and everything holding its terminal are gone
                    return
                if not data:
                    return
                yield 1, data
        finally:
            self._close()

    def _close(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    async def resize(self, width: int, height: int) -> None:
        if self.master >= 0:
            set_window(self.master, width, height)
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGWINCH)

    async def wait(self) -> int:
        return await self.proc.wait()


async def tty_exec(argv: list[str], cwd: Path) -> TtyExecSession:
    """Start ``runc exec --tty`` in the foreground on a new pseudo-terminal (runc refuses a console socket
    unless detached, and a detached exec's exit code would be lost)."""
    master, slave = os.openpty()
    tty.setraw(slave)  # only the container's terminal echoes and translates
    try:
        proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
                                                    start_new_session=True)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return TtyExecSession(proc, master)


def unix_connect(directory: Path, name: str) -> socket.socket:
    """A connected unix socket to ``directory/name``, however long that path is."""
    dir_fd = os.open(directory, os.O_PATH | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(f"/proc/self/fd/{dir_fd}/{name}")
    except OSError:
        sock.close()
        raise
    finally:
        os.close(dir_fd)
    sock.setblocking(False)
    return sock


async def exec_sync(runc: list[str], directory: Path, container_id: str, cmd: list[str],
                    timeout: float) -> ExecResult:
    """Run ``cmd`` in the container to completion, its output collected; after ``timeout`` seconds (0: none)
    the command is killed and RuntimeFailure raised."""
    pid_file = f"exec-{secrets.token_hex(6)}.pid"
    proc = await asyncio.create_subprocess_exec(
        *runc, "exec", "--pid-file", pid_file, container_id, *cmd, cwd=directory,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout or None)
    except TimeoutError:
        # Kill the command itself and let runc reap it: killing runc first would orphan the command to the
        # host's init, and the container's PID namespace could not end before init reaped it.
        await _kill_exec(directory / pid_file, proc)
        try:
            await asyncio.wait_for(proc.communicate(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.communicate()
        raise RuntimeFailure(f"command {cmd!r} timed out after {timeout:g}s") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(directory / pid_file)
    assert proc.returncode is not None
    return ExecResult(proc.returncode, out, err)


async def _kill_exec(pid_file: Path, proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the command runc exec started, once runc has written its pid (it may still be starting)."""
    for _ in range(500):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
            return
        except (FileNotFoundError, ValueError):
            if proc.returncode is not None:
                return
            await asyncio.sleep(0.01)
        except ProcessLookupError:
            return


async def exec(runc: list[str], directory: Path, container_id: str, cmd: list[str], *, stdin: bool,
               tty: bool) -> PipeExecSession | TtyExecSession:
    """An interactive exec (``runc exec`` in the foreground, so its exit status is the command's)."""
    if tty:
        return await tty_exec([*runc, "exec", "--tty", container_id, *cmd], directory)
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(*runc, "exec", container_id, *cmd, cwd=directory,
                                                stdin=pipe if stdin else asyncio.subprocess.DEVNULL,
                                                stdout=pipe, stderr=pipe)
    return PipeExecSession(proc)


# -- attach -----------------------------------------------------------------------------------------------

class AttachSession:
    """An attach to a container through its shim; ``wait`` is the container's exit code."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tty: bool,
                 exit_code: Callable[[], Awaitable[int]], *, stdin_once: bool = False) -> None:
        self.reader, self.writer, self.tty = reader, writer, tty
        self.stdin_once = stdin_once
        self._exit_code = exit_code
        self._code: int | None = None

    async def _send(self, kind: int, payload: bytes) -> None:
        with contextlib.suppress(ConnectionError):
            self.writer.write(FRAME.pack(kind, len(payload)) + payload)
            await self.writer.drain()

    async def write_stdin(self, data: bytes) -> None:
        await self._send(0, data)

    async def close_stdin(self) -> None:
        """The client's stdin ended: the container's closes too only with ``stdinOnce``."""
        if self.stdin_once:
            await self._send(1, b"")

    async def resize(self, width: int, height: int) -> None:
        await self._send(2, struct.pack(">HH", width, height))

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        try:
            while True:
                header = await self.reader.readexactly(FRAME.size)
                kind, size = FRAME.unpack(header)
                payload = await self.reader.readexactly(size)
                if kind == 3:
                    self._code = struct.unpack(">i", payload)[0]
                    return
                yield kind, payload
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self.writer.close()

    async def wait(self) -> int:
        if self._code is None:
            self._code = await self._exit_code()
        return self._code


async def attach(directory: Path, tty: bool, exit_code: Callable[[], Awaitable[int]]) -> AttachSession:
    try:
        sock = unix_connect(directory, "attach.sock")
    except OSError as err:
        raise RuntimeFailure(f"cannot attach: the container is not running ({err.strerror})") from None
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    return AttachSession(reader, writer, tty, exit_code, stdin_once=_shim_setting(directory, "stdin_once") == "1")


def _shim_setting(directory: Path, key: str) -> str:
    """One value of the container's ``shim.conf`` (``key value`` lines), "" when absent."""
    with contextlib.suppress(OSError):
        for line in (directory / "shim.conf").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return value
    return ""


# -- port-forward -----------------------------------------------------------------------------------------

class SocketStream:
    """A PortStream over a connected socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def read(self, n: int = 65536) -> bytes:
        return await self.reader.read(n)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def socket_in_netns(netns: str, family: socket.AddressFamily) -> socket.socket:
    """A TCP socket created inside the network namespace at ``netns`` (call in a thread of its own)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        try:
            return socket.socket(family, socket.SOCK_STREAM)
        finally:
            _setns(own)
    finally:
        os.close(own)
        os.close(target)


async def port_forward(netns: str, port: int) -> SocketStream:
    """Connect to ``port`` on the Pod's localhost (IPv4, then IPv6); ``netns`` "" is the host's network."""
    loop = asyncio.get_running_loop()
    failure: OSError | None = None
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        if netns:
            with ThreadPoolExecutor(1) as pool:  # a fresh thread: a failed setns back must not taint others
                sock = await loop.run_in_executor(pool, socket_in_netns, netns, family)
        else:
            sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (host, port))
        except OSError as err:
            sock.close()
            failure = err
            continue
        reader, writer = await asyncio.open_connection(sock=sock)
        return SocketStream(reader, writer)
    raise RuntimeFailure(f"failed to connect to localhost:{port} inside the pod: {failure}")
