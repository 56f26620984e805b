"""A pod with a WaitForFirstConsumer claim, end to end with the volume controllers: the scheduler picks the node,
writes it into the claim's selected-node annotation, the local-path provisioner makes the volume there, the claim
binds, then the pod is bound."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sched_helpers import eventually, node

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.volumes import VolumeSettings, volume_controllers
from nanokube.scheduler import Scheduler, SchedulerSettings


async def test_wait_for_first_consumer_claim_is_provisioned_on_the_chosen_node(tmp_path: Path) -> None:
    async with InProcessCluster() as cluster:
        client = cluster.client
        nodes = cluster.resource("", "v1", "nodes")
        pods = cluster.resource("", "v1", "pods")
        claims = cluster.resource("", "v1", "persistentvolumeclaims")
        volumes = cluster.resource("", "v1", "persistentvolumes")
        for name in ("a", "b"):
            body = node(name, labels={"disk": "ssd"} if name == "b" else {})
            status = body.pop("status")
            await client.create(nodes, "", body)
            await client.patch(nodes, "", name, {"status": status}, subresource="status")
        stop = asyncio.Event()
        components = [*volume_controllers(client, VolumeSettings(storage_dir=str(tmp_path))),
                      Scheduler(client, SchedulerSettings(seed=3))]
        tasks = [asyncio.create_task(c.run(stop=stop)) for c in components]
        try:
            await client.create(claims, "default", {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
            await client.create(pods, "default", {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"},
                "spec": {"nodeSelector": {"disk": "ssd"}, "containers": [{"name": "c", "image": "busybox"}],
                         "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}})

            async def bound() -> str:
                return str((await client.get(pods, "default", "app"))["spec"].get("nodeName") or "")

            assert await eventually(bound, what="the pod bound") == "b"
            claim = await client.get(claims, "default", "data")
            assert claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == "b"
            assert claim["status"]["phase"] == "Bound"  # bound before the pod was
            volume = await client.get(volumes, "", claim["spec"]["volumeName"])
            terms = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
            assert terms[0]["matchExpressions"][0]["values"] == ["b"]
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
