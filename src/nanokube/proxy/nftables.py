"""Applying rule sets to the kernel, one nft transaction per sync (libnftables, or ``nft -f``).

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

from .libnft import NftCommand, NftError, NftRunner, nft_available, nft_runner
from .model import JSON
from .nftscript import full_script, update_script
from .rules import NodeContext, Ruleset, Snapshot, service_rules

__all__ = ["NftError", "NftRunner", "NftablesBackend", "Snapshot", "nft_available", "run_nft"]

log = logging.getLogger(__name__)


async def run_nft(command: Sequence[str], script: str) -> None:
    """Apply ``script`` with the given nft command line (one transaction)."""
    await NftCommand(command).run(script)


Part = tuple[tuple[str, ...], NodeContext, Ruleset]  # versions, node context, the Service's rules


def _version(svc: JSON, slices: list[JSON]) -> tuple[str, ...]:
    return (svc["metadata"].get("resourceVersion", ""), *(s["metadata"].get("resourceVersion", "") for s in slices))


class NftablesBackend:
    def __init__(self, table: str = "nanokube", *, command: Sequence[str] | None = None, netns: str = "",
                 conntrack: Sequence[str] | None = ("conntrack",)) -> None:
        """``command`` forces an nft command line; else libnftables (in network namespace ``netns``, a path
        such as /run/netns/NAME, when given). ``conntrack`` runs in this process's namespace."""
        self.table = table
        self.runner = nft_runner(command, netns=netns)
        self.conntrack = tuple(conntrack) if conntrack and shutil.which(conntrack[0]) else None
        self.applied: Ruleset | None = None  # what the kernel holds; None: unknown, replace it all
        self._parts: dict[str, Part] = {}  # per Service, what ``applied`` was merged from

    def _plan(self, snap: Snapshot) -> tuple[dict[str, Part], set[str]]:
        """Each Service's rules (reused while its versions and the node context stand) and the changed keys."""
        fresh: dict[str, Part] = {}
        changed: set[str] = set(self._parts.keys() - snap.services.keys())
        for key, svc in snap.services.items():
            slices = snap.slices.get(key, [])
            version = _version(svc, slices)
            cached = self._parts.get(key)
            if cached is not None and cached[0] == version and cached[1] == snap.ctx:
                fresh[key] = cached
            else:
                fresh[key] = (version, snap.ctx, service_rules(svc, slices, snap.ctx))
                changed.add(key)
        return fresh, changed

    def ruleset(self, snap: Snapshot) -> Ruleset:
        """The whole rule set of ``snap`` (what a full replacement would load)."""
        fresh, _ = self._plan(snap)
        out = Ruleset(nodeport_ips=tuple(sorted(set(snap.ctx.node_ips))))
        for _, _, part in fresh.values():
            out.merge(part)
        return out

    async def sync(self, snap: Snapshot) -> None:
        """Make the kernel hold the rules of ``snap``; raises ``NftError`` (and replaces all next time).

        Only the Services that changed are diffed, so the work is proportional to the change."""
        fresh, changed = self._plan(snap)
        nodeport_ips = tuple(sorted(set(snap.ctx.node_ips)))
        applied = self.applied
        if applied is None:
            rules = Ruleset(nodeport_ips=nodeport_ips)
            for _, _, part in fresh.values():
                rules.merge(part)
            await self.runner.run(full_script(self.table, rules))
            self.applied, self._parts = rules, fresh
            return
        old, new = Ruleset(nodeport_ips=applied.nodeport_ips), Ruleset(nodeport_ips=nodeport_ips)
        for key in changed:
            if key in self._parts:
                old.merge(self._parts[key][2])
            if key in fresh:
                new.merge(fresh[key][2])
        script = update_script(self.table, old, new)
        if script:
            self.applied = None
            await self.runner.run(script)
            applied.remove(old)
            applied.merge(new)
            applied.nodeport_ips = nodeport_ips
            self.applied = applied
        self._parts = fresh
        await self._clear_udp(old, new)

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

    async def verify(self) -> bool:
        """False (and a full replacement on the next sync) when the table or its hooked chains are gone."""
        if self.applied is None:
            return False
        try:  # one command per call: nft 1.0.6 fails a buffer of several list commands
            for what in ("chain", "nat-prerouting"), ("chain", "filter-output"), ("map", "service-ips"):
                await self.runner.run(f"list {what[0]} ip {self.table} {what[1]}\n")
        except NftError:
            self.applied = None
            return False
        return True

    async def cleanup(self) -> None:
        """Remove the table and everything in it (nothing left behind after shutdown)."""
        await self.runner.run(f"add table ip {self.table}\ndelete table ip {self.table}\n")
        self.applied = None
        self._parts.clear()

    def close(self) -> None:
        """Release the nft context (after ``cleanup``, or to leave the rules in place)."""
        self.runner.close()
