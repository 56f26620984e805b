"""The nft backend's incremental bookkeeping: after any sequence of changes, what it believes the kernel holds
equals the rule set computed from scratch (the nft runner only records: no kernel needed)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from nanokube.proxy.nftables import NftablesBackend
from nanokube.proxy.rules import NodeContext, Snapshot, group_slices

from .objects import endpoint, service, slice_


class Recording:
    """An nft runner that only remembers the scripts."""

    def __init__(self) -> None:
        self.scripts: list[str] = []

    async def run(self, script: str) -> None:
        self.scripts.append(script)

    def close(self) -> None:
        pass


async def test_random_changes_keep_the_applied_view_exact() -> None:
    rng = random.Random(7)
    backend = NftablesBackend("nkt", command=("true",), conntrack=None)
    runner = backend.runner = Recording()
    services: dict[str, dict] = {}
    slices: dict[str, dict] = {}
    ctx = NodeContext("n1", ("192.0.2.2",))
    for step in range(300):
        name = f"s{rng.randrange(12)}"
        action = rng.random()
        if action < 0.2:
            services.pop(name, None)
        elif action < 0.5:
            spec: dict[str, Any] = rng.choice([{}, {"sessionAffinity": "ClientIP"}, {"internalTrafficPolicy": "Local"},
                               {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP",
                                                              "nodePort": 30000 + int(name[1:])}]}])
            services[name] = service(name, f"10.43.0.{int(name[1:]) + 10}", rv=str(step), **spec)
        else:
            eps = [endpoint(f"10.42.0.{rng.randrange(2, 9)}", rng.choice(["n1", "n2"]), ready=rng.random() < 0.8)
                   for _ in range(rng.randrange(0, 4))]
            slices[name] = slice_(name, eps, rv=str(step))
        if rng.random() < 0.05:
            ctx = NodeContext("n1", (rng.choice(["192.0.2.2", "192.0.2.3"]),))
        snap = Snapshot({f"default/{k}": v for k, v in services.items()}, group_slices(slices.values()), ctx)
        await backend.sync(snap)
        assert backend.applied == backend.ruleset(snap), f"step {step}"
    assert runner.scripts[0].startswith("add table ip nkt\ndelete table ip nkt")
    assert all(not s.startswith("add table") for s in runner.scripts[1:])  # one full load, then differences


async def test_removed_udp_endpoints_have_their_conntrack_entries_deleted(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    fake = tmp_path / "conntrack"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    fake.chmod(0o755)
    backend = NftablesBackend("nkt", command=("true",), conntrack=(str(fake),))
    backend.runner = Recording()
    dns = service("dns", ports=[{"port": 53, "protocol": "UDP"}])
    web = service("web", "10.43.0.11")
    ctx = NodeContext("n1")

    def snap(dns_ips: list[str], web_ips: list[str], rv: str) -> Snapshot:
        slices = [slice_("dns", [endpoint(ip) for ip in dns_ips], port=53, protocol="UDP", rv=rv),
                  slice_("web", [endpoint(ip) for ip in web_ips], rv=rv)]
        return Snapshot({"default/dns": dns, "default/web": web}, group_slices(slices), ctx)

    await backend.sync(snap(["10.42.0.5", "10.42.0.6"], ["10.42.0.7"], "1"))
    await backend.sync(snap(["10.42.0.6"], [], "2"))  # one DNS endpoint and the TCP one go
    assert log.read_text().splitlines() == ["-D -p udp --reply-src 10.42.0.5"]
