"""Projected serviceAccountToken volumes: a token bound to the Pod, renewed past 80% of its lifetime."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from nanokube.apiserver.serviceaccountadmission import ServiceAccountAdmission
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.satokens import TokenManager
from nanokube.kubelet.volumes import VolumeManager

JSON = dict[str, Any]


def claims_of(token: str) -> JSON:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


async def test_kube_api_access_volume_on_disk(tmp_path: Path) -> None:
    async with InProcessCluster() as cluster:
        cluster.storage.admitters.append(ServiceAccountAdmission(cluster.storage).admit)
        client = cluster.client
        await client.create(cluster.resource("", "v1", "serviceaccounts"), "default", {"metadata": {"name": "default"}})
        await client.create(cluster.resource("", "v1", "configmaps"), "default",
                            {"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "PEM"}})
        pod = await client.create(cluster.resource("", "v1", "pods"), "default",
                                  {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}})
        manager = VolumeManager(client, tmp_path)
        container = pod["spec"]["containers"][0]
        [mount] = await manager.mounts(pod, container)
        assert mount.container_path == "/var/run/secrets/kubernetes.io/serviceaccount" and mount.readonly
        root = Path(mount.host_path)
        assert (root / "ca.crt").read_text() == "PEM" and (root / "namespace").read_text() == "default"
        claims = claims_of((root / "token").read_text())
        assert claims["kubernetes.io"]["pod"] == {"name": "p", "uid": pod["metadata"]["uid"]}
        assert claims["exp"] - claims["iat"] == 3607
        assert await cluster.server.tokens.authenticate((root / "token").read_text()) is not None


async def test_token_renewed_only_when_due() -> None:
    now = [0.0]
    calls: list[tuple[str, str, JSON]] = []

    async def requester(namespace: str, account: str, body: JSON) -> JSON:
        calls.append((namespace, account, body))
        return {"status": {"token": f"t{len(calls)}"}}

    manager = TokenManager(requester, clock=lambda: now[0])
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {"serviceAccountName": "robot"}}
    source = {"expirationSeconds": 1000, "audience": "vault", "path": "token"}
    assert await manager.token(pod, source) == "t1"
    assert calls[0][:2] == ("ns", "robot")
    assert calls[0][2]["spec"] == {"expirationSeconds": 1000, "audiences": ["vault"],
                                   "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u"}}
    now[0] = 799.0
    assert await manager.token(pod, source) == "t1"
    now[0] = 800.0
    assert await manager.token(pod, source) == "t2"
    manager.forget("u")
    assert await manager.token(pod, source) == "t3"
