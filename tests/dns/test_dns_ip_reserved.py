"""The DNS Service address (.10 of the service range) is never handed to a Service that did not ask for it."""

from __future__ import annotations

from nanokube.api.registry import Registry
from nanokube.apiserver.app import APIServer, APIServerSettings
from nanokube.apiserver.storage import ObjectStorage
from nanokube.cmd.cluster import local_client
from nanokube.store.memory import MemoryStore


async def test_a_full_small_range_keeps_the_dns_address_for_kube_dns() -> None:
    store = MemoryStore()
    storage = ObjectStorage(store, Registry())
    server = APIServer(APIServerSettings(port=0, service_cidr="10.43.0.0/28"), storage)
    await store.start()
    try:
        await server.prepare()
        client = local_client(storage, server)
        services = client.registry.get("", "v1", "services")
        assert services is not None
        given = []
        # .0 network, .15 broadcast, .1 kubernetes, .10 DNS: twelve addresses remain for Services without one.
        for i in range(12):
            svc = await client.create(services, "default", {"metadata": {"name": f"s{i}"},
                                                            "spec": {"ports": [{"port": 80}]}})
            given.append(svc["spec"]["clusterIP"])
        assert "10.43.0.10" not in given and len(set(given)) == 12
        dns = await client.create(services, "kube-system", {"metadata": {"name": "kube-dns"}, "spec": {
            "clusterIP": "10.43.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}})
        assert dns["spec"]["clusterIP"] == "10.43.0.10"
    finally:
        await store.close()
