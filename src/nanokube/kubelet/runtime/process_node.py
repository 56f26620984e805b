"""The local node on the process runtime: this machine as a worker without root, runc or CNI.

``ProcessNode`` is ``LocalNode`` (``kubelet/local.py``) with the parts swapped: a ``LoopbackNetwork`` (one
127.x address per Pod, from the node's pod CIDR: 10.42.0.0/24 → 127.42.0.0/24) instead of the CNI network, the
``ProcessRuntime`` instead of runc, no image store, no volume mounts and no cross-node routes (probes and
lifecycle hooks work: they exec beside the container or connect to its 127.x address). It takes the same
``LocalNodeSettings`` and reuses ``LocalNode.config`` for the Node's capacity, labels and addresses, so the two
stay alike; its state lives in ``<data dir>/process-node`` (apart from the native node's ``node``).

It says plainly that nothing is isolated: a WARNING in the log at start, the Node's nodeInfo
``containerRuntimeVersion`` ``process://<version>``, a ``nanokube.io/runtime: process`` annotation and a Node
condition ``nanokube.io/Isolation`` = False (reason ``ProcessRuntime``). The condition is added by a strategic
merge patch of the Node's status (conditions merge by type, so the agent's own heartbeats leave it in place)
once the Node is registered, and renewed with each status interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket

from nanokube import __version__
from nanokube.api.errors import ApiError
from nanokube.client.events import EventRecorder
from nanokube.client.interface import JSON, Client
from nanokube.kubelet.agent import AgentSettings, NodeAgent
from nanokube.kubelet.hooks import HookRunner
from nanokube.kubelet.local import LocalNode, LocalNodeSettings
from nanokube.kubelet.network.loopback import LoopbackNetwork, loopback_cidr_for
from nanokube.kubelet.node import NodeConfig
from nanokube.kubelet.podenv import EnvResolver
from nanokube.kubelet.probes import ProbeManager
from nanokube.kubelet.server import KubeletServer, KubeletServerSettings
from nanokube.kubelet.sync import PodSyncer, SyncSettings
from nanokube.util.timeutil import rfc3339

from .process import ISOLATION_WARNING, RUNTIME_NAME, ProcessRuntime, ProcessSettings

log = logging.getLogger(__name__)
ISOLATION_CONDITION = "nanokube.io/Isolation"
RUNTIME_ANNOTATION = "nanokube.io/runtime"
STATE_DIR = "process-node"


def isolation_condition(now: str) -> JSON:
    return {"type": ISOLATION_CONDITION, "status": "False", "reason": "ProcessRuntime",
            "message": ISOLATION_WARNING, "lastHeartbeatTime": now, "lastTransitionTime": now}


class ProcessNode:
    def __init__(self, client: Client, settings: LocalNodeSettings, *, status_interval: float = 60.0) -> None:
        self.client = client
        self.settings = settings
        self.name = settings.name or socket.gethostname().lower()
        self.loopback_cidr = loopback_cidr_for(settings.pod_cidr)
        self.status_interval = status_interval
        self.runtime: ProcessRuntime | None = None
        self.network: LoopbackNetwork | None = None

    @property
    def summary(self) -> str:
        return (f"plain processes, NOT isolated (process runtime), Pod addresses from {self.loopback_cidr}")

    def config(self, host_ip: str) -> NodeConfig:
        base = LocalNode(self.client, dataclasses.replace(self.settings, name=self.name)).config(host_ip)
        info = {**base.node_info, "containerRuntimeVersion": f"{RUNTIME_NAME}://{__version__}"}
        annotations = {**base.annotations, RUNTIME_ANNOTATION: RUNTIME_NAME}
        return dataclasses.replace(base, node_info=info, annotations=annotations)

    async def run(self, *, stop: asyncio.Event) -> None:
        state = self.settings.data_dir / STATE_DIR
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        network = self.network = LoopbackNetwork(self.loopback_cidr, str(state))
        await network.start()
        await network.recover()
        runtime = self.runtime = ProcessRuntime(ProcessSettings(state_dir=state), network)
        await runtime.recover()
        log.warning("local node %s: %s", self.name, ISOLATION_WARNING)
        host_ip = "127.0.0.1"
        agent = NodeAgent(self.client, AgentSettings(pod_field_selector=f"spec.nodeName={self.name}",
                                                     status_interval=self.status_interval))
        config = self.config(host_ip)
        env = EnvResolver(self.client, node_allocatable=config.allocatable or config.capacity)
        recorder = EventRecorder(self.client, "kubelet", host=self.name)
        probes = ProbeManager(runtime, wake=agent.workers.update, recorder=recorder)
        syncer = PodSyncer(SyncSettings(self.name, (host_ip,), runtime_name=RUNTIME_NAME), runtime, agent.status,
                           recorder=recorder, env=env, probes=probes, hooks=HookRunner(runtime))
        server = KubeletServer(agent, KubeletServerSettings(host="127.0.0.1", port=0,
                                                           token=self.settings.kubelet_token))
        port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        server_task = asyncio.create_task(server.run(stop=stop, started=port.set_result), name="process-kubelet")
        config.kubelet_port = await port
        agent.add_node(config, runtime, syncer)
        marker = asyncio.create_task(self._mark_not_isolated(stop), name="process-node-isolation")
        try:
            await agent.run(stop=stop)
        finally:
            marker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await marker
            await server_task
            await probes.close()
            await runtime.close()  # processes keep running for the next agent
            await network.shutdown()

    async def _mark_not_isolated(self, stop: asyncio.Event) -> None:
        """Add the Isolation condition once the Node exists, and renew it with every status interval."""
        delay = 0.2
        while not stop.is_set():
            try:
                nodes = self.client.registry.get("", "v1", "nodes")
                assert nodes is not None
                await self.client.patch(nodes, "", self.name, {"status": {"conditions": [
                    isolation_condition(rfc3339())]}}, patch_type="strategic", subresource="status")
                delay = self.status_interval
            except (ApiError, OSError) as err:  # not registered yet (NotFound), or a transient failure
                log.debug("marking node %s not isolated: %s", self.name, err)
                delay = min(max(delay * 2, 0.2), 5.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
