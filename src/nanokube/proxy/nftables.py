"""Applying rule sets to the kernel with ``nft -f``, one transaction per sync.

``NftablesBackend`` owns one table (``ip <table>``). Its first apply, and any apply after a failure, replaces
the whole table, whatever a previous run left there; later applies send only the difference from the rule
set the kernel holds (see ``nftscript``). Each Service's rules are computed once per (Service, slices)
resourceVersions and reused while neither changes, so a change to one of thousands of Services costs one
small computation and one small transaction. When UDP endpoints go away their conntrack entries are deleted
(as kube-proxy does), so DNS clients do not keep talking to a Pod that is gone. ``cleanup`` deletes the table.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Sequence

from .model import JSON
from .nftscript import full_script, update_script
from .rules import NodeContext, Ruleset, Snapshot, service_rules

__all__ = ["NftError", "NftablesBackend", "Snapshot", "nft_available", "run_nft"]

log = logging.getLogger(__name__)


class NftError(Exception):
    """nft refused a transaction; nothing of it was applied."""


async def run_nft(command: Sequence[str], script: str, *, timeout: float = 30.0) -> None:
    proc = await asyncio.create_subprocess_exec(*command, "-f", "-", stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(script.encode()), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise NftError(f"nft did not finish in {timeout}s") from None
    if proc.returncode != 0:
        raise NftError(err.decode(errors="replace").strip() or f"nft exited with {proc.returncode}")


def nft_available(command: Sequence[str] = ("nft",)) -> tuple[bool, str]:
    if shutil.which(command[0]) is None:
        return False, f"{command[0]} is not installed (apt-get install nftables)"
    return True, ""


def _version(svc: JSON, slices: list[JSON]) -> tuple[str, ...]:
    return (svc["metadata"].get("resourceVersion", ""), *(s["metadata"].get("resourceVersion", "") for s in slices))


class NftablesBackend:
    def __init__(self, table: str = "nanokube", *, command: Sequence[str] = ("nft",),
                 conntrack: Sequence[str] | None = ("conntrack",)) -> None:
        self.table = table
        self.command = tuple(command)
        self.conntrack = tuple(conntrack) if conntrack and shutil.which(conntrack[0]) else None
        self.applied: Ruleset | None = None  # what the kernel holds; None: unknown, replace it all
        self._cache: dict[str, tuple[tuple[str, ...], NodeContext, Ruleset]] = {}

    def ruleset(self, snap: Snapshot) -> Ruleset:
        out = Ruleset(nodeport_ips=tuple(sorted(set(snap.ctx.node_ips))))
        fresh: dict[str, tuple[tuple[str, ...], NodeContext, Ruleset]] = {}
        for key, svc in snap.services.items():
            slices = snap.slices.get(key, [])
            version = _version(svc, slices)
            cached = self._cache.get(key)
            if cached is not None and cached[0] == version and cached[1] == snap.ctx:
                part = cached[2]
            else:
                part = service_rules(svc, slices, snap.ctx)
            fresh[key] = (version, snap.ctx, part)
            out.merge(part)
        self._cache = fresh
        return out

    async def sync(self, snap: Snapshot) -> None:
        """Make the kernel hold the rules of ``snap``; raises ``NftError`` (and replaces all next time)."""
        rules = self.ruleset(snap)
        old = self.applied
        script = full_script(self.table, rules) if old is None else update_script(self.table, old, rules)
        if not script:
            return
        self.applied = None
        await run_nft(self.command, script)
        self.applied = rules
        if old is not None:
            await self._clear_udp(old, rules)

    async def _clear_udp(self, old: Ruleset, new: Ruleset) -> None:
        """Delete conntrack entries that still point UDP traffic at endpoints no longer used."""
        if self.conntrack is None:
            return
        for name in old.chains.keys() - new.chains.keys():
            if not name.startswith("endpoint-") or "/udp/" not in name:
                continue
            ip = name.rsplit("__", 1)[-1].split("/", 1)[0]
            proc = await asyncio.create_subprocess_exec(*self.conntrack, "-D", "-p", "udp", "--reply-src", ip,
                                                        stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.DEVNULL)
            await proc.wait()

    async def cleanup(self) -> None:
        """Remove the table and everything in it (nothing left behind after shutdown)."""
        await run_nft(self.command, f"add table ip {self.table}\ndelete table ip {self.table}\n")
        self.applied = None
        self._cache.clear()
