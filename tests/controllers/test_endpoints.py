"""Endpoints and EndpointSlices follow a Service's selector and its Pods' readiness."""

from __future__ import annotations

import asyncio

from harness import eventually

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.endpoints import EndpointsController
from nanokube.controllers.serviceaccount import ServiceAccountController


async def make_pod(cluster: InProcessCluster, name: str, ip: str, ready: bool, app: str = "web") -> None:
    pods = cluster.resource("", "v1", "pods")
    body = {"metadata": {"name": name, "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]}]}}
    await cluster.client.create(pods, "default", body)
    await cluster.client.bind("default", name, "node-1")
    status = {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                         "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    await cluster.client.patch(pods, "default", name, status, subresource="status")


async def test_endpoints_and_slices_track_ready_pods() -> None:
    async with InProcessCluster() as cluster:
        stop = asyncio.Event()
        task = asyncio.create_task(EndpointsController(cluster.client).run(stop=stop))
        services = cluster.resource("", "v1", "services")
        endpoints = cluster.resource("", "v1", "endpoints")
        slices = cluster.resource("discovery.k8s.io", "v1", "endpointslices")
        await cluster.client.create(services, "default", {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        await make_pod(cluster, "a", "10.42.0.5", ready=True)
        await make_pod(cluster, "b", "10.42.0.6", ready=False)
        await make_pod(cluster, "other", "10.42.0.7", ready=True, app="db")

        async def endpoints_ok() -> bool:
            ep = await cluster.client.get(endpoints, "default", "web")
            subset = ep["subsets"][0]
            return bool([a["ip"] for a in subset["addresses"]] == ["10.42.0.5"]
                        and [a["ip"] for a in subset["notReadyAddresses"]] == ["10.42.0.6"]
                        and subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}])

        await eventually(endpoints_ok)

        async def slice_ok() -> bool:
            listed = await cluster.client.list(slices, "default", label_selector="kubernetes.io/service-name=web")
            (s,) = listed.items
            got = {e["addresses"][0]: e["conditions"]["ready"] for e in s["endpoints"]}
            return got == {"10.42.0.5": True, "10.42.0.6": False} and s["ports"][0]["port"] == 8080

        await eventually(slice_ok)
        # A pod turning ready moves to the ready addresses.
        pods = cluster.resource("", "v1", "pods")
        await cluster.client.patch(pods, "default", "b", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                                   subresource="status")

        async def both_ready() -> bool:
            ep = await cluster.client.get(endpoints, "default", "web")
            return sorted(a["ip"] for a in ep["subsets"][0]["addresses"]) == ["10.42.0.5", "10.42.0.6"]

        await eventually(both_ready)
        stop.set()
        await task


async def test_every_namespace_gets_a_default_service_account() -> None:
    async with InProcessCluster() as cluster:
        stop = asyncio.Event()
        task = asyncio.create_task(ServiceAccountController(cluster.client).run(stop=stop))
        await cluster.client.create(cluster.resource("", "v1", "namespaces"), "", {"metadata": {"name": "team"}})
        accounts = cluster.resource("", "v1", "serviceaccounts")
        await eventually(lambda: cluster.client.get(accounts, "team", "default"))
        await eventually(lambda: cluster.client.get(accounts, "kube-system", "default"))
        stop.set()
        await task
