"""The controller manager: while it holds the ``kube-controller-manager`` Lease, it runs every controller as
an asyncio task. Several control planes may run one each; only the leader's controllers act."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import Callable

from nanokube.client.interface import Client
from nanokube.client.leaderelection import LeaderElector, LeaseSettings

from .base import Controller
from .cronjob import CronJobController
from .daemonset import DaemonSetController
from .deployment import DeploymentController
from .disruption import DisruptionController
from .endpoints import EndpointsController
from .endpointslicemirroring import EndpointSliceMirroringController
from .gc import GarbageCollector
from .job import JobController, TTLAfterFinishedController
from .namespace import NamespaceController
from .nodelifecycle import NodeLifecycleController, NodeLifecycleSettings
from .podgc import PodGCController
from .replicaset import ReplicaSetController
from .rootcapublisher import RootCAPublisher, RootCASettings
from .serviceaccount import ServiceAccountController
from .statefulset import StatefulSetController
from .volumes import (
    LocalPathProvisioner,
    PersistentVolumeController,
    PVCProtectionController,
    PVProtectionController,
    VolumeSettings,
)

log = logging.getLogger(__name__)
ControllerFactory = Callable[[Client], Controller]


def default_controllers(node_lifecycle: NodeLifecycleSettings | None = None,
                        volumes: VolumeSettings | None = None,
                        root_ca: RootCASettings | None = None) -> list[ControllerFactory]:
    """Every controller; the root CA publisher only when the cluster has a CA (``root_ca``)."""
    lifecycle = node_lifecycle or NodeLifecycleSettings()
    storage = volumes or VolumeSettings()
    publisher: list[ControllerFactory] = [lambda client: RootCAPublisher(client, root_ca)] if root_ca else []
    return [*publisher,
        NamespaceController,
        GarbageCollector,
        ServiceAccountController,
        EndpointsController,
        EndpointSliceMirroringController,
        lambda client: NodeLifecycleController(client, lifecycle),
        PodGCController,
        ReplicaSetController,
        DeploymentController,
        StatefulSetController,
        DaemonSetController,
        JobController,
        CronJobController,
        TTLAfterFinishedController,
        lambda client: PersistentVolumeController(client, storage),
        lambda client: LocalPathProvisioner(client, storage),
        PVCProtectionController,
        PVProtectionController,
        DisruptionController,
    ]


class ControllerManager:
    def __init__(self, client: Client, factories: list[ControllerFactory] | None = None, *,
                 identity: str = "", lease_duration: float = 15.0) -> None:
        self.client = client
        self.factories = factories if factories is not None else default_controllers()
        self.identity = identity or f"{socket.gethostname()}_{uuid.uuid4()}"
        self.elector = LeaderElector(client, LeaseSettings("kube-controller-manager", self.identity,
                                                           lease_duration=lease_duration,
                                                           renew_deadline=lease_duration * 2 / 3,
                                                           retry_period=lease_duration / 7.5))

    async def run(self, *, stop: asyncio.Event) -> None:
        await self.elector.run(self._lead, stop=stop)

    async def _lead(self, done: asyncio.Event) -> None:
        controllers = [factory(self.client) for factory in self.factories]
        tasks = [asyncio.create_task(c.run(stop=done), name=c.name) for c in controllers]
        log.info("controllers running: %s", ", ".join(c.name for c in controllers))
        try:
            await done.wait()
        finally:
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 5)
