"""Node IPAM: Nodes without a podCIDR get the lowest free /24 of the cluster range; set ones are kept."""

from __future__ import annotations

import pytest
from harness import eventually, running

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.nodeipam import CIDRAllocator, NodeIPAMController, NodeIPAMSettings


def test_allocator_skips_every_overlapping_cidr() -> None:
    allocator = CIDRAllocator("10.42.0.0/16", 24)
    assert allocator.next_free([]) == "10.42.0.0/24"
    assert allocator.next_free(["10.42.0.0/24", "10.42.1.0/24"]) == "10.42.2.0/24"
    # A bigger block set by hand covers several /24s; garbage and other families are ignored.
    assert allocator.next_free(["10.42.0.0/23", "10.42.2.128/25", "nonsense", "fd00::/64"]) == "10.42.3.0/24"
    assert CIDRAllocator("10.42.0.0/23", 24).next_free(["10.42.0.0/24", "10.42.1.0/24"]) is None
    with pytest.raises(ValueError):
        CIDRAllocator("10.42.0.0/16", 8)


async def test_nodes_without_cidr_get_distinct_free_ones() -> None:
    async with InProcessCluster() as cluster:
        client = cluster.client
        nodes = cluster.resource("", "v1", "nodes")
        # The local node and a simulated one come with theirs.
        for name, cidr in (("local", "10.42.0.0/24"), ("sim-1", "10.42.1.0/24")):
            await client.create(nodes, "", {"metadata": {"name": name}, "spec": {"podCIDR": cidr,
                                                                                  "podCIDRs": [cidr]}})
        for name in ("agent-a", "agent-b"):
            await client.create(nodes, "", {"metadata": {"name": name}, "spec": {}})
        controller = NodeIPAMController(client, NodeIPAMSettings("10.42.0.0/16", 24))

        async def cidr_of(name: str) -> str:
            node = await client.get(nodes, "", name)
            return str(node["spec"].get("podCIDR") or "")

        async with running(controller):
            a = await eventually(lambda: cidr_of("agent-a"), what="agent-a's CIDR")
            b = await eventually(lambda: cidr_of("agent-b"), what="agent-b's CIDR")
            assert {a, b} == {"10.42.2.0/24", "10.42.3.0/24"}
            node_a = await client.get(nodes, "", "agent-a")
            assert node_a["spec"]["podCIDRs"] == [a]
            assert await cidr_of("local") == "10.42.0.0/24"
            assert await cidr_of("sim-1") == "10.42.1.0/24"
            # A deleted node's CIDR is handed out again; a node joining later gets it.
            await client.delete(nodes, "", "agent-a")
            await client.create(nodes, "", {"metadata": {"name": "agent-c"}, "spec": {}})
            assert await eventually(lambda: cidr_of("agent-c"), what="agent-c's CIDR") == a
