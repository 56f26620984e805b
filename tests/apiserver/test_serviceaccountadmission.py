"""ServiceAccount admission on Pod create, and the default/kubernetes Endpoints the server publishes."""

from __future__ import annotations

from typing import Any

from nanokube.apiserver import endpointreconciler
from nanokube.apiserver.serviceaccountadmission import MOUNT_PATH, ServiceAccountAdmission
from nanokube.cmd.inprocess import InProcessCluster


def admitting(cluster: InProcessCluster) -> InProcessCluster:
    cluster.storage.admitters.append(ServiceAccountAdmission(cluster.storage).admit)
    return cluster


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"initContainers": [{"name": "init", "image": "busybox"}],
                     "containers": [{"name": "c", "image": "busybox"}], **spec}}


async def test_pod_gets_kube_api_access_volume() -> None:
    async with InProcessCluster() as cluster:
        admitting(cluster)
        pods = cluster.resource("", "v1", "pods")
        created = await cluster.client.create(pods, "default", pod("p"))
        spec = created["spec"]
        assert spec["serviceAccountName"] == "default"
        [volume] = spec["volumes"]
        assert volume["name"].startswith("kube-api-access-") and len(volume["name"]) == len("kube-api-access-") + 5
        assert volume["projected"] == {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}
        for container in (*spec["containers"], *spec["initContainers"]):
            assert container["volumeMounts"] == [{"name": volume["name"], "readOnly": True,
                                                  "mountPath": MOUNT_PATH}]
        # Updates leave it alone (admission runs on create only).
        created["metadata"]["labels"] = {"a": "b"}
        updated = await cluster.client.update(pods, "default", created)
        assert updated["spec"]["volumes"] == spec["volumes"]


async def test_automount_opt_outs_and_existing_mounts() -> None:
    async with InProcessCluster() as cluster:
        admitting(cluster)
        pods = cluster.resource("", "v1", "pods")
        accounts = cluster.resource("", "v1", "serviceaccounts")
        off = await cluster.client.create(pods, "default", pod("off", automountServiceAccountToken=False))
        assert "volumes" not in off["spec"]
        await cluster.client.create(accounts, "default", {"metadata": {"name": "quiet"},
                                                          "automountServiceAccountToken": False,
                                                          "imagePullSecrets": [{"name": "regcred"}]})
        quiet = await cluster.client.create(pods, "default", pod("quiet", serviceAccountName="quiet"))
        assert "volumes" not in quiet["spec"]
        assert quiet["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
        forced = await cluster.client.create(pods, "default", pod("forced", serviceAccountName="quiet",
                                                                  automountServiceAccountToken=True))
        assert forced["spec"]["volumes"][0]["name"].startswith("kube-api-access-")
        own = pod("own", volumes=[{"name": "mine", "emptyDir": {}}])
        own["spec"]["containers"][0]["volumeMounts"] = [{"name": "mine", "mountPath": MOUNT_PATH}]
        mixed = await cluster.client.create(pods, "default", own)
        assert mixed["spec"]["containers"][0]["volumeMounts"] == [{"name": "mine", "mountPath": MOUNT_PATH}]
        assert mixed["spec"]["initContainers"][0]["volumeMounts"][0]["name"].startswith("kube-api-access-")
        assert len(mixed["spec"]["volumes"]) == 2


async def test_admission_off_by_default() -> None:
    async with InProcessCluster() as cluster:
        created = await cluster.client.create(cluster.resource("", "v1", "pods"), "default", pod("p"))
        assert "volumes" not in created["spec"]


async def test_kubernetes_endpoints_published_and_kept() -> None:
    async with InProcessCluster(serve=True) as cluster:
        endpoints = cluster.resource("", "v1", "endpoints")
        slices = cluster.resource("discovery.k8s.io", "v1", "endpointslices")
        port = cluster.server.bound_port
        eps = await cluster.client.get(endpoints, "default", "kubernetes")
        assert eps["subsets"] == [{"addresses": [{"ip": "127.0.0.1"}],
                                   "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
        assert eps["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] == "true"
        eps_slice = await cluster.client.get(slices, "default", "kubernetes")
        assert eps_slice["endpoints"][0]["addresses"] == ["127.0.0.1"]
        assert eps_slice["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"
        # Another address (a restart elsewhere) rewrites both.
        await endpointreconciler.reconcile(cluster.storage, "10.42.9.1", 7443)
        eps = await cluster.client.get(endpoints, "default", "kubernetes")
        assert eps["subsets"][0]["addresses"] == [{"ip": "10.42.9.1"}]
        assert (await cluster.client.get(slices, "default", "kubernetes"))["ports"][0]["port"] == 7443


def test_endpoint_address_choice() -> None:
    assert endpointreconciler.endpoint_address("127.0.0.1", "") == "127.0.0.1"
    assert endpointreconciler.endpoint_address("0.0.0.0", "") == ""
    assert endpointreconciler.endpoint_address("127.0.0.1", "10.42.0.1") == "10.42.0.1"
    assert endpointreconciler.endpoint_address("localhost", "") == ""
