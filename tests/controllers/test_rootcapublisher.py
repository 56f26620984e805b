"""The kube-root-ca.crt ConfigMap appears in every namespace and is put back when changed or deleted."""

from __future__ import annotations

from functools import partial

from harness import eventually, running

from nanokube.api.objects import deep_copy
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.rootcapublisher import NAME, RootCAPublisher, RootCASettings

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


async def test_publishes_and_restores_root_ca() -> None:
    async with InProcessCluster() as cluster:
        client = cluster.client
        configmaps = cluster.resource("", "v1", "configmaps")
        namespaces = cluster.resource("", "v1", "namespaces")
        await client.create(namespaces, "", {"metadata": {"name": "team"}})

        async def published(ns: str) -> bool:
            cm = await client.get(configmaps, ns, NAME)
            return cm.get("data") == {"ca.crt": CA}

        async with running(RootCAPublisher(client, RootCASettings(CA))):
            for ns in ("default", "kube-system", "team"):
                await eventually(partial(published, ns), what=f"root CA in {ns}")
            cm = deep_copy(await client.get(configmaps, "team", NAME))  # the in-process client shares objects
            assert "kubernetes.io/description" in cm["metadata"]["annotations"]
            cm["data"] = {"ca.crt": "tampered", "extra": "x"}
            await client.update(configmaps, "team", cm)
            await eventually(lambda: published("team"), what="root CA restored after an edit")
            await client.delete(configmaps, "team", NAME)
            await eventually(lambda: published("team"), what="root CA restored after a delete")
            await client.create(namespaces, "", {"metadata": {"name": "later"}})
            await eventually(lambda: published("later"), what="root CA in a new namespace")
