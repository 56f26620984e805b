"""The real kubectl against an in-process control plane running the StatefulSet controller (and a hand-played
kubelet): ``rollout status``, ``rollout history``, ``set image``, ``rollout undo``, ``get pvc`` and ``describe``
read what the controller writes as they would on a real cluster. (The same story on simulated nodes through
``nanokube up`` is tests/e2e/test_statefulset.py.)"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from test_statefulset_helpers import Kube, running

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.gc import GarbageCollector
from nanokube.controllers.statefulset import StatefulSetController

KUBECTL = Path(sys.executable).parent / "kubectl"
pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl is not installed beside the interpreter")

WEB = """
apiVersion: v1
kind: Service
metadata:
  name: nginx
  labels: {app: nginx}
spec:
  ports: [{port: 80, name: web}]
  clusterIP: None
  selector: {app: nginx}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 2
  selector:
    matchLabels: {app: nginx}
  template:
    metadata:
      labels: {app: nginx}
    spec:
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.24
        ports: [{containerPort: 80, name: web}]
        volumeMounts: [{name: www, mountPath: /usr/share/nginx/html}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""


class Kubectl:
    def __init__(self, url: str, directory: Path) -> None:
        self.config = directory / "kubeconfig"
        self.cache = directory / "cache"
        self.config.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: c, cluster: {{server: '{url}'}}}}]\n"
            "users: [{name: u, user: {}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]\n"
            "current-context: x\n")

    async def __call__(self, *args: str, input: str | None = None) -> str:
        process = await asyncio.create_subprocess_exec(
            str(KUBECTL), "--kubeconfig", str(self.config), "--cache-dir", str(self.cache), *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(input.encode() if input else None), 60)
        assert process.returncode == 0, f"kubectl {' '.join(args)} failed:\n{out.decode()}{err.decode()}"
        return out.decode()


def _column(table: str, index: int = 0) -> list[str]:
    return [line.split()[index] for line in table.splitlines()[1:] if line.strip()]


async def test_kubectl_rolls_out_a_statefulset_and_rolls_it_back(tmp_path: Path) -> None:
    async with InProcessCluster(serve=True) as cluster, running(StatefulSetController(cluster.client),
                                                                GarbageCollector(cluster.client)):
        kube = Kube(cluster)
        kubectl = Kubectl(cluster.url, tmp_path)
        async with kube.kubelet():
            await kubectl("apply", "-f", "-", input=WEB)
            status = await kubectl("rollout", "status", "sts/web", "--timeout=30s")
            assert status.splitlines()[-1] == "partitioned roll out complete: 2 new pods have been updated..."
            assert _column(await kubectl("get", "pvc")) == ["www-web-0", "www-web-1"]
            first = _column(await kubectl("get", "controllerrevisions"))

            await kubectl("set", "image", "sts/web", "nginx=registry.k8s.io/nginx-slim:0.27")
            await kubectl("rollout", "status", "sts/web", "--timeout=30s")
            assert _column(await kubectl("rollout", "history", "sts/web"))[1:] == ["1", "2"]
            old = await kubectl("rollout", "history", "sts/web", "--revision=1")
            assert "Image:\tregistry.k8s.io/nginx-slim:0.24" in old
            images = await kubectl("get", "pods", "-o", "jsonpath={.items[*].spec.containers[0].image}")
            assert images.split() == ["registry.k8s.io/nginx-slim:0.27"] * 2

            await kubectl("rollout", "undo", "sts/web")
            await kubectl("rollout", "status", "sts/web", "--timeout=30s")

            async def back_on_first() -> bool:
                hashes = await kubectl("get", "pods", "-o",
                                       "jsonpath={.items[*].metadata.labels.controller-revision-hash}")
                return hashes.split() == first * 2

            deadline = asyncio.get_running_loop().time() + 10
            while not await back_on_first():
                assert asyncio.get_running_loop().time() < deadline, "pods are not back on the first revision"
                await asyncio.sleep(0.05)
            assert _column(await kubectl("rollout", "history", "sts/web"))[1:] == ["2", "3"]
            described = await kubectl("describe", "sts", "web")
            assert "create Claim www-web-0 Pod web-0 in StatefulSet web success" in described
            assert "Pods Status:    2 Running / 0 Waiting / 0 Succeeded / 0 Failed" in described
