"""Starting process shims (with an interpreter this user may run), and re-adopting a process runtime's sandboxes and containers after an agent restart.

``ProcessShimStarter`` is the native ``ShimStarter`` (spare shim, one-line report) running ``process_shim.py``.

``recover_state`` follows the native recovery (``recovery.py``): the state directory is the truth. A container
whose shim still runs (same pid, same start time) is running and its shim is watched again; nothing is
signalled. One whose shim wrote ``exit.json`` has exited. One whose shim is gone without a word cannot be
supervised any more: its process group is killed and it is reported exited (255). A container that was never
started (no shim) and records without a sandbox are removed; a sandbox whose set-up was interrupted gives its
address back and stays not ready. The Pod addresses themselves are recovered by the ``LoopbackNetwork``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import process_io as io
from .shimctl import NICE, SPARE_NICENESS, ShimStarter
from .state import Container, lost_shim, read_json, remove_container_dir, write_json

if TYPE_CHECKING:
    from .process import ProcessRuntime

log = logging.getLogger(__name__)
NO_SHIM = -1  # the shim_pid of a container not started yet (a record Container.load accepts)
PROCESS_SHIM = Path(__file__).with_name("process_shim.py")


def shim_python() -> str:
    """An interpreter this user may run for the shims (they need only the standard library): this one, else
    the system's python3 (a virtualenv under another user's home may be usable only through its symlink)."""
    for candidate in (sys.executable, shutil.which("python3") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return sys.executable


class ProcessShimStarter(ShimStarter):
    def _spawn(self) -> subprocess.Popen[bytes]:
        """A spare process shim, niced as the native spare is when it can take the normal priority back when
        used (only root may lower its niceness; otherwise the containers would run niced)."""
        nice = [NICE, "-n", str(SPARE_NICENESS)] if os.geteuid() == 0 else []
        return subprocess.Popen([*nice, self.python, "-S", str(PROCESS_SHIM), "-", self.tag], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)


async def recover_state(rt: ProcessRuntime) -> None:
    await rt._recover_sandboxes(rt.sandbox_dir, lambda d: remove_container_dir(None, d))
    await _recover_containers(rt)


async def _recover_containers(rt: ProcessRuntime) -> None:
    for d in sorted(rt.container_dir.iterdir()):
        cid = d.name
        if cid in rt._containers or not d.is_dir():
            continue
        c = Container.load(d)
        exited = read_json(d / "exit.json")
        if c is None or c.status.sandbox_id not in rt._sandboxes or (c.shim_pid == NO_SHIM and exited is None):
            log.warning("removing container %s left unstarted or without its sandbox", cid)
            await asyncio.to_thread(remove_container_dir, None, d)
            continue
        rt._containers[cid] = c
        if exited is None and c.shim_alive():
            rt._watch(c)
            continue
        if exited is None:
            log.warning("container %s lost its shim; killing its processes", cid)
            io.kill_group(rt.init_pid(c), signal.SIGKILL)
            exited = lost_shim(rt.clock())
            write_json(d / "exit.json", exited)
        c.apply_exit(exited)
