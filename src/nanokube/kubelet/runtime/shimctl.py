"""The agent's side of container shims: start one and wait for its report, and learn when one exits.

A shim (``shim.py``) is started per container with ``python -S`` in a session of its own, so it outlives the
agent. ``ShimStarter.start`` returns once the shim has reported that ``runc create`` worked (or raises with
runc's error; the report is read on the event loop, no thread); it keeps a spare shim started ahead of time, at
a low priority, to take the interpreter's start-up off that path. Exits are watched through a pidfd registered with the event loop (``watch_exit``), which works the same
for a shim this agent started and for one a previous agent left behind, and costs no thread or task.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from .interface import CreateContainerFailure

SHIM = Path(__file__).with_name("shim.py")
NICE = "nice"
SPARE_NICENESS = 10


def write_conf(directory: Path, settings: dict[str, str | bool | list[str]]) -> None:
    """The shim's ``shim.conf``: ``key value`` lines (lists repeat the key, booleans are 1/0)."""
    lines = []
    for key, value in settings.items():
        for item in value if isinstance(value, list) else [value]:
            text = ("1" if item else "0") if isinstance(item, bool) else str(item)
            if "\n" in text:
                raise ValueError(f"shim setting {key} contains a newline")
            lines.append(f"{key} {text}\n")
    (directory / "shim.conf").write_text("".join(lines))


class ShimStarter:
    """Starts shims; one spare shim is kept started ahead of time (waiting for its directory on stdin), so
    creating a container does not wait for a Python interpreter to start."""

    def __init__(self, python: str, tag: str = "", *, spare: bool = True) -> None:
        self.python = python
        self.tag = tag  # shown on the spare's command line (which runtime it belongs to)
        self.keep_spare = spare
        self._spare: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        """A spare shim, started at a low priority (``nice``) so that its interpreter's start-up yields the
        CPU to the container creations under way; it takes the normal priority back when given a container."""
        return subprocess.Popen([NICE, "-n", str(SPARE_NICENESS), self.python, "-S", str(SHIM), "-", self.tag],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    def _take(self, directory: Path) -> subprocess.Popen[bytes]:
        """The spare (or, if it died, a new shim), told which container it serves."""
        spare, self._spare = self._spare, None
        for attempt in range(2):
            popen = spare if spare is not None and attempt == 0 else self._spawn()
            assert popen.stdin is not None
            try:
                popen.stdin.write(f"{directory}\n".encode())
                popen.stdin.close()
                return popen
            except OSError:
                popen.kill()
                popen.wait()
        raise CreateContainerFailure("the container shim could not be started")

    async def start(self, directory: Path, timeout: float) -> subprocess.Popen[bytes]:
        """Start the shim of the container in ``directory`` (its ``shim.conf`` written) and wait for its
        report; CreateContainerFailure with runc's message if the container could not be created."""
        popen = self._take(directory)
        if self.keep_spare:
            self._spare = self._spawn()
        assert popen.stdout is not None
        try:
            line = await asyncio.wait_for(_read_line(popen.stdout.fileno()), timeout)
        except TimeoutError:
            popen.kill()
            await asyncio.to_thread(popen.wait)
            raise CreateContainerFailure(f"runc create did not finish in {timeout:g}s") from None
        finally:
            popen.stdout.close()
        kind, _, detail = line.decode(errors="replace").strip().partition(" ")
        if kind != "pid":
            await asyncio.to_thread(popen.wait)
            raise CreateContainerFailure(detail if kind == "error" else "the container shim failed to start "
                                         f"(see {directory / 'shim.log'})")
        return popen

    def close(self) -> None:
        """Let the spare go (it exits when its stdin closes)."""
        spare, self._spare = self._spare, None
        if spare is not None:
            assert spare.stdin is not None and spare.stdout is not None
            spare.stdin.close()
            spare.stdout.close()
            spare.wait()


class ShimZygote:
    """Starts shims by forking them from one long-lived ``shim.py --zygote`` (see ``shim.zygote``): about 10 ms
    of CPU less per container than a new interpreter, and the shims share the zygote's pages. ``start`` has
    ``ShimStarter.start``'s contract but returns the shim's pid: the shim is the zygote's child, not ours (the
    kernel reaps it; its exit is watched by pidfd as any shim's). The zygote starts niced, at first use, and
    exits when ``close`` shuts its stdin; the shims it forked live on."""

    def __init__(self, python: str, tag: str = "") -> None:
        self.python = python
        self.tag = tag
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._reports: dict[str, asyncio.Future[tuple[int, str]]] = {}
        self._forked: dict[str, int] = {}
        self._watches: dict[str, int] = {}

    def prepare(self) -> None:
        """Start the zygote now (it is started at first use otherwise), so no Pod waits for its interpreter."""
        self._zygote()

    def _zygote(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._proc = subprocess.Popen([NICE, "-n", str(SPARE_NICENESS), self.python, "-S", str(SHIM), "--zygote",
                                       self.tag], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        assert self._proc.stdout is not None
        self._buffer = b""
        fd = self._proc.stdout.fileno()
        os.set_blocking(fd, False)
        asyncio.get_running_loop().add_reader(fd, self._on_output, self._proc)
        return self._proc

    def _on_output(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        try:
            chunk = os.read(proc.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        if not chunk:  # the zygote is gone: whoever waits for a report will not get one
            asyncio.get_running_loop().remove_reader(proc.stdout.fileno())
            for directory in list(self._reports):
                self._settle(directory, 0, "error the shim zygote exited")
            return
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            directory, _, rest = line.decode(errors="replace").partition(" ")
            pid_text, _, message = rest.partition(" ")
            if not pid_text.isdigit():
                continue
            if message == "forked":
                self._forked[directory] = int(pid_text)
                self._watch(directory, int(pid_text))
            else:
                self._settle(directory, int(pid_text), message)

    def _watch(self, directory: str, pid: int) -> None:  # directory: the key, the container directory's name
        """A shim that dies before it reports fails its creation at once, not at the timeout."""
        waiter = self._reports.get(directory)
        if waiter is None or waiter.done():
            return
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._settle(directory, pid, f"error the container shim exited (see {directory}/shim.log)")
            return
        self._watches[directory] = fd
        asyncio.get_running_loop().add_reader(
            fd, self._settle, directory, pid, f"error the container shim exited (see {directory}/shim.log)")

    def _settle(self, directory: str, pid: int, message: str) -> None:
        fd = self._watches.pop(directory, -1)
        if fd >= 0:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
        waiter = self._reports.get(directory)
        if waiter is not None and not waiter.done():
            waiter.set_result((pid, message))

    async def start(self, directory: Path, timeout: float) -> int:
        """Fork the shim of the container in ``directory`` (its ``shim.conf`` written) and wait for its report;
        returns the shim's pid. CreateContainerFailure with runc's message if the container could not be made."""
        key = directory.name  # the container id: reports are keyed by it
        if "\n" in str(directory) or not key or " " in key:
            raise CreateContainerFailure(f"cannot start a shim in {str(directory)!r}")
        proc = self._zygote()
        waiter: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._reports[key] = waiter
        try:
            assert proc.stdin is not None
            try:
                proc.stdin.write(f"{directory}\n".encode())
                proc.stdin.flush()
            except OSError:
                raise CreateContainerFailure("the container shim could not be started") from None
            try:
                pid, message = await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    if key in self._forked:
                        os.kill(self._forked[key], signal.SIGKILL)
                raise CreateContainerFailure(f"runc create did not finish in {timeout:g}s") from None
        finally:
            self._settle(key, 0, "")  # drop the watch, if any
            self._reports.pop(key, None)
            self._forked.pop(key, None)
        kind, _, detail = message.partition(" ")
        if kind != "pid":
            raise CreateContainerFailure(detail if kind == "error" and detail else
                                         f"the container shim failed to start (see {directory / 'shim.log'})")
        return pid

    def close(self) -> None:
        """Let the zygote go (it exits when its stdin closes); the shims it forked keep running."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None and proc.stdout is not None
        with contextlib.suppress(RuntimeError, ValueError):
            asyncio.get_running_loop().remove_reader(proc.stdout.fileno())
        proc.stdin.close()
        proc.stdout.close()
        proc.wait()


async def _read_line(fd: int) -> bytes:
    """One line from the pipe ``fd`` (until a newline or end of file), read as the loop sees data arrive."""
    loop = asyncio.get_running_loop()
    arrived = asyncio.Event()
    os.set_blocking(fd, False)
    loop.add_reader(fd, arrived.set)
    data = b""
    try:
        while not data.endswith(b"\n"):
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                arrived.clear()
                await arrived.wait()
                continue
            if not chunk:
                break
            data += chunk
    finally:
        loop.remove_reader(fd)
    return data


async def release_init(runc_root: Path, container_id: str, bundle: Path, timeout: float = 10.0) -> bool:
    """Let a created container's process run, as ``runc start`` does, without starting runc: runc's init
    waits, blocked opening ``<runc root>/<id>/exec.fifo`` for writing, until someone opens it for reading;
    then it writes one byte and executes the container's command, and the fifo's removal is what makes runc
    call the container running. Returns False, having changed nothing, when that cannot be done here (no
    fifo, the init already gone or not there within ``timeout``): the caller runs ``runc start``, which
    reports the failure as runc words it."""
    fifo = runc_root / container_id / "exec.fifo"
    try:
        init = os.pidfd_open(int((bundle / "init.pid").read_text().strip()))
    except (OSError, ValueError):
        return False
    try:
        # Non-blocking, so opening does not wait for the writer; epoll reports the fifo only once init
        # has opened it (and written), or closed it again.
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        os.close(init)
        return False
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[str] = loop.create_future()

    def wake(what: str) -> None:
        if not ready.done():
            ready.set_result(what)

    loop.add_reader(fd, wake, "fifo")
    loop.add_reader(init, wake, "exited")
    try:
        what = await asyncio.wait_for(ready, timeout)
        data = os.read(fd, 16) if what == "fifo" else b""
    except (TimeoutError, BlockingIOError):
        data = b""
    finally:
        loop.remove_reader(fd)
        loop.remove_reader(init)
        os.close(fd)
        os.close(init)
    if data != b"0":
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(fifo)
    return True


def watch_exit(pid: int, callback: Callable[[], None]) -> int:
    """Call ``callback`` on the running loop when process ``pid`` exits (at once if it is gone); returns the
    pidfd to pass to ``unwatch`` (-1 when there is nothing to unwatch)."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        loop.call_soon(callback)
        return -1
    loop.add_reader(fd, callback)
    return fd


def unwatch(fd: int) -> None:
    if fd >= 0:
        asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)


def reap(pid: int, popen: subprocess.Popen[bytes] | None) -> None:
    """Collect an exited shim if it is our child (a previous agent's shims are not)."""
    if popen is not None:
        popen.poll()
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
