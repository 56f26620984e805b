"""Hand-written Endpoints of Services without a selector are mirrored into EndpointSlices."""

from __future__ import annotations

from harness import eventually, running

from nanokube.api.objects import deep_copy
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.endpointslicemirroring import (
    MANAGED_BY,
    EndpointSliceMirroringController,
    mirrored_slices,
)


def endpoints(ready: list[str], not_ready: list[str] = (), **labels: str) -> dict:  # type: ignore[assignment]
    subset = {"addresses": [{"ip": ip} for ip in ready], "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": ip} for ip in not_ready]
    return {"metadata": {"name": "ext", "labels": labels}, "subsets": [subset]}


def test_subsets_become_slices_with_ready_conditions() -> None:
    body = endpoints(["10.1.0.5"], ["10.1.0.6"])
    body["subsets"].append({"addresses": [{"ip": "fd00::1"}], "ports": []})  # IPv6 only: nothing mirrored
    (mirrored,) = mirrored_slices(body)
    assert mirrored["endpoints"] == [{"addresses": ["10.1.0.5"], "conditions": {"ready": True}},
                                     {"addresses": ["10.1.0.6"], "conditions": {"ready": False}}]
    assert mirrored["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


async def test_selectorless_service_endpoints_are_mirrored_and_follow_changes() -> None:
    async with InProcessCluster() as cluster:
        services = cluster.resource("", "v1", "services")
        eps_res = cluster.resource("", "v1", "endpoints")
        slices = cluster.resource("discovery.k8s.io", "v1", "endpointslices")
        client = cluster.client
        await client.create(services, "default", {"metadata": {"name": "ext"},
                                                  "spec": {"ports": [{"name": "http", "port": 80}]}})
        await client.create(services, "default", {"metadata": {"name": "sel"},
                                                  "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})
        await client.create(eps_res, "default", endpoints(["10.1.0.5"], team="a"))
        sel = endpoints(["10.1.0.9"])
        sel["metadata"]["name"] = "sel"
        await client.create(eps_res, "default", sel)

        async def mirrored(name: str) -> list[dict]:
            listed = await client.list(slices, "default", label_selector=f"kubernetes.io/service-name={name}")
            return listed.items

        async with running(EndpointSliceMirroringController(client)):
            async def first() -> dict | None:
                items = await mirrored("ext")
                return items[0] if items and items[0]["endpoints"][0]["addresses"] == ["10.1.0.5"] else None

            got = await eventually(first, what="a mirrored slice")
            assert got["metadata"]["labels"] == {"team": "a", "kubernetes.io/service-name": "ext",
                                                 "endpointslice.kubernetes.io/managed-by": MANAGED_BY}
            assert got["metadata"]["ownerReferences"][0]["kind"] == "Endpoints"
            live = deep_copy(await client.get(eps_res, "default", "ext"))  # the in-process client shares objects
            live["subsets"][0]["addresses"].append({"ip": "10.1.0.6"})
            await client.update(eps_res, "default", live)

            async def two() -> bool:
                items = await mirrored("ext")
                return len(items) == 1 and len(items[0]["endpoints"]) == 2

            await eventually(two, what="the added address mirrored")
            await client.delete(eps_res, "default", "ext")

            async def gone() -> bool:
                return not await mirrored("ext")

            await eventually(gone, what="mirrored slices removed with their Endpoints")
            assert not await mirrored("sel")  # a Service with a selector is the endpoints controller's
