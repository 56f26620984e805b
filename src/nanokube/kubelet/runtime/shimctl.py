"""The agent's side of container shims: start one and wait for its report, and learn when one exits.

A shim (``shim.py``) is started per container with ``python -S`` in a session of its own, so it outlives the
agent. ``start_shim`` returns once the shim has reported that ``runc create`` worked (or raises with runc's
error). Exits are watched through a pidfd registered with the event loop (``watch_exit``), which works the same
for a shim this agent started and for one a previous agent left behind, and costs no thread or task.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from .interface import CreateContainerFailure

SHIM = Path(__file__).with_name("shim.py")


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


async def start_shim(python: str, directory: Path, timeout: float) -> subprocess.Popen[bytes]:
    """Start the shim of the container in ``directory`` (its ``shim.conf`` written) and wait for its report;
    CreateContainerFailure with runc's message if the container could not be created."""
    with open(directory / "shim.log", "ab") as log:
        popen = subprocess.Popen([python, "-S", str(SHIM), str(directory)], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    assert popen.stdout is not None
    try:
        line = await asyncio.wait_for(asyncio.to_thread(popen.stdout.readline), timeout)
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
