"""The endpoint controller gives an endpoint its Pod's hostname when the Pod's subdomain names the Service."""

from __future__ import annotations

import asyncio
import contextlib

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.endpoints import EndpointsController


async def _pod(cluster: InProcessCluster, name: str, ip: str, **spec: str) -> None:
    pods = cluster.resource("", "v1", "pods")
    body = {"metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "x"}], **spec}}
    await cluster.client.create(pods, "default", body)
    await cluster.client.bind("default", name, "node-1")
    status = {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                         "conditions": [{"type": "Ready", "status": "True"}]}}
    await cluster.client.patch(pods, "default", name, status, subresource="status")


async def test_hostname_set_only_when_subdomain_names_the_service() -> None:
    async with InProcessCluster() as cluster:
        stop = asyncio.Event()
        task = asyncio.create_task(EndpointsController(cluster.client).run(stop=stop))
        try:
            await cluster.client.create(cluster.resource("", "v1", "services"), "default", {
                "metadata": {"name": "nginx"},
                "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"name": "web", "port": 80}]}})
            await _pod(cluster, "web-0", "10.42.0.5", hostname="web-0", subdomain="nginx")
            await _pod(cluster, "other", "10.42.0.6", hostname="other", subdomain="elsewhere")
            await _pod(cluster, "plain", "10.42.0.7")
            slices = cluster.resource("discovery.k8s.io", "v1", "endpointslices")
            endpoints = cluster.resource("", "v1", "endpoints")
            want = {"10.42.0.5": "web-0", "10.42.0.6": None, "10.42.0.7": None}
            for _ in range(500):
                listed = await cluster.client.list(slices, "default", label_selector="kubernetes.io/service-name=nginx")
                got = {e["addresses"][0]: e.get("hostname") for s in listed.items for e in s["endpoints"]}
                if got == want:
                    break
                await asyncio.sleep(0.01)
            assert got == want
            ep = await cluster.client.get(endpoints, "default", "nginx")
            addresses = {a["ip"]: a.get("hostname") for a in ep["subsets"][0]["addresses"]}
            assert addresses == want
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)
