"""Pod garbage collection: Pods whose node is gone or unreachable are removed for good.

* A Pod bound to a Node that does not exist (deleted, or never registered) is force-deleted.
* A Pod being deleted on a node that stopped reporting (Ready ``Unknown``) or is tainted
  ``node.kubernetes.io/out-of-service`` is force-deleted once its grace period is over: nobody is left to
  confirm that its containers stopped. Kubernetes waits for an operator's out-of-service taint in that case;
  nanokube takes the node's silence as the answer (``force_delete_unreachable``), so that controllers, a
  StatefulSet included, can bring the Pods back elsewhere. A StatefulSet never sees two Pods of one name,
  because the old one is gone before the new one is made.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass

from nanokube.api.errors import Conflict, NotFound
from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client
from nanokube.util.timeutil import now, parse_rfc3339

from .base import Controller

log = logging.getLogger(__name__)
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"


@dataclass
class PodGCSettings:
    force_delete_unreachable: bool = True
    orphan_quarantine: float = 40.0  # a node may register a little after its pods were bound
    period: float = 5.0


class PodGCController(Controller):
    name = "pod-garbage-collector"

    def __init__(self, client: Client, settings: PodGCSettings | None = None) -> None:
        super().__init__(client)
        self.settings = settings or PodGCSettings()
        nodes, pods = client.registry.get("", "v1", "nodes"), client.registry.get("", "v1", "pods")
        assert nodes is not None and pods is not None
        self.pods_res = pods
        self.nodes = self.informer(Informer(client, nodes))
        self.pods = self.informer(Informer(client, pods))
        # node name -> keys of the Pods bound to it, so a node event touches only its own Pods.
        self.by_node: dict[str, set[str]] = {}
        self.pods.add_handler(self._on_pod)
        self.nodes.add_handler(self._on_node)

    def _on_pod(self, kind: str, pod: JSON, old: JSON | None) -> None:
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        node = (pod.get("spec") or {}).get("nodeName")
        if kind == "DELETED":
            if node:
                self.by_node.get(node, set()).discard(key)
            return
        if node:
            self.by_node.setdefault(node, set()).add(key)
            self.queue.add(key)

    def _on_node(self, kind: str, node: JSON, old: JSON | None) -> None:
        """Only a node that went away or stopped reporting concerns its Pods; heartbeats do not."""
        if kind == "DELETED" or (kind == "MODIFIED" and self._node_lost(node)
                                 and (old is None or not self._node_lost(old))):
            for key in self.by_node.get(node["metadata"]["name"], ()):
                self.queue.add(key)

    async def sync(self, key: Hashable) -> float | None:
        pod = self.pods.get(str(key))
        if pod is None:
            return None
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            return None
        node = self.nodes.get(node_name)
        if node is None:
            age = (now() - parse_rfc3339(pod["metadata"]["creationTimestamp"])).total_seconds()
            if age < self.settings.orphan_quarantine:
                return self.settings.orphan_quarantine - age
            await self._force_delete(pod, f"its node {node_name} does not exist")
            return None
        if not pod["metadata"].get("deletionTimestamp") or not self._node_lost(node):
            return None
        remaining = (parse_rfc3339(pod["metadata"]["deletionTimestamp"]) - now()).total_seconds()
        if remaining > 0:
            return remaining
        await self._force_delete(pod, f"its node {node_name} is not reporting")
        return None

    def _node_lost(self, node: JSON) -> bool:
        taints = (node.get("spec") or {}).get("taints") or []
        if any(t.get("key") == OUT_OF_SERVICE and t.get("effect") == "NoExecute" for t in taints):
            return True
        if not self.settings.force_delete_unreachable:
            return False
        conditions = (node.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "Unknown" for c in conditions)

    async def _force_delete(self, pod: JSON, why: str) -> None:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        log.info("force-deleting pod %s/%s: %s", ns, name, why)
        try:
            await self.client.delete(self.pods_res, ns, name, grace_period_seconds=0, uid=pod["metadata"]["uid"])
        except (NotFound, Conflict):
            pass
