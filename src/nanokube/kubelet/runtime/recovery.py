"""Re-adopting a native runtime's sandboxes and containers after the agent restarts (``NativeRuntime.recover``).

The state directory is the truth: every sandbox and container directory with a readable record comes back.
A container whose shim still runs (same pid, same start time) is running or created as recorded, and its shim
is watched again: nothing is signalled, so the container does not notice the restart. One whose shim wrote
``exit.json`` has exited. One whose shim is gone without a word cannot be supervised any more: it is killed
and reported exited (255). Half-made things (a record missing, a sandbox whose network setup was interrupted,
runc containers no record knows) are undone. Split from ``native.py`` for size; it works on that class's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING

from .cgroups import Cgroup
from .interface import ContainerState
from .sandbox import remove_pod_files
from .state import Container, lost_shim, read_json, remove_container_dir, write_json

if TYPE_CHECKING:
    from .native import NativeRuntime

log = logging.getLogger(__name__)


async def recover_state(rt: NativeRuntime) -> None:
    await rt._recover_sandboxes(rt.sandbox_dir, remove_pod_files)
    await _recover_containers(rt)
    for cid in await _runc_ids(rt):
        if cid not in rt._containers:
            log.info("deleting runc container %s that no record knows", cid)
            await rt._runc_out("delete", "--force", cid, check=False)


async def _recover_containers(rt: NativeRuntime) -> None:
    for d in sorted(rt.container_dir.iterdir()):
        cid = d.name
        if cid in rt._containers or not d.is_dir():
            continue
        c = Container.load(d)
        if c is None or c.status.sandbox_id not in rt._sandboxes:
            log.warning("removing container %s left half-made or without its sandbox", cid)
            await rt._runc_out("delete", "--force", cid, check=False)
            path = str((read_json(d / "container.json") or {}).get("cgroups_path") or "")
            await asyncio.to_thread(remove_container_dir, Cgroup(rt.cgroups, path) if path else None, d)
            continue
        rt._containers[cid] = c
        result = read_json(d / "exit.json")
        if result is None and c.shim_alive():
            if c.status.state is ContainerState.CREATED and await _runc_status(rt, cid) == "running":
                c.status.state = ContainerState.RUNNING  # started just before the previous agent went away
                c.status.started_at = c.status.started_at or (d / "container.json").stat().st_mtime
                c.save()
            rt._watch(c)
            continue
        if result is None:
            log.warning("container %s lost its shim; killing it", cid)
            await rt._kill(cid, "KILL")
            result = lost_shim(rt.clock())
            write_json(d / "exit.json", result)
        c.apply_exit(result)


async def _runc_ids(rt: NativeRuntime) -> list[str]:
    out = await rt._runc_out("list", "--format", "json", check=False)
    with contextlib.suppress(ValueError):
        return [entry["id"] for entry in json.loads(out or "null") or []]
    return []


async def _runc_status(rt: NativeRuntime, cid: str) -> str:
    out = await rt._runc_out("state", cid, check=False)
    with contextlib.suppress(ValueError):
        return str(json.loads(out).get("status", ""))
    return ""
