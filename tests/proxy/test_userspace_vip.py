"""The userspace proxy in vip mode (root): cluster IPs on ``lo`` of a network namespace the test creates."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from .netns import SERVER_IP, NetPair, net_pair
from .objects import endpoint, service, slice_

PROXY = """
import asyncio, json, sys
from nanokube.proxy.rules import NodeContext, Snapshot
from nanokube.proxy.userspace import UserspaceBackend, UserspaceSettings
async def main():
    services, slices = json.loads(sys.argv[1])
    snap = Snapshot({"default/" + s["metadata"]["name"]: s for s in services},
                    {"default/web": slices}, NodeContext("n1"))
    backend = UserspaceBackend(UserspaceSettings(mode="vip", device="lo"))
    await backend.sync(snap)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await backend.cleanup()
    print("clean", flush=True)
asyncio.run(main())
"""


@pytest.fixture
def pair() -> Iterator[NetPair]:
    with net_pair() as p:
        p.serve("8080=a", "8081=b")
        yield p


def test_cluster_ip_on_lo_is_served_and_removed(pair: NetPair) -> None:
    web = service("web", "10.43.0.10")
    slices = [slice_("web", [endpoint(SERVER_IP)], port=p, name=f"web-{p}") for p in (8080, 8081)]
    proc = subprocess.Popen(["ip", "netns", "exec", pair.client, sys.executable, "-c", PROXY,
                             json.dumps([[web], slices])], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        addresses = subprocess.run(["ip", "-n", pair.client, "-4", "addr", "show", "dev", "lo"], capture_output=True,
                                   text=True).stdout
        assert "10.43.0.10/32" in addresses
        assert set(pair.connect("10.43.0.10", 80, 30)) == {"a", "b"}
        proc.stdin.close()
        assert proc.stdout.readline().strip() == "clean"
    finally:
        proc.kill()
        proc.wait()
    addresses = subprocess.run(["ip", "-n", pair.client, "-4", "addr", "show", "dev", "lo"], capture_output=True,
                               text=True).stdout
    assert "10.43.0.10" not in addresses
