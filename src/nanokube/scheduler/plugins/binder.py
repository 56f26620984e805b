"""DefaultBinder (POST pods/NAME/binding through the client) and the DynamicResources PostFilter note.

nanokube has no dynamic resource allocation, but kube 1.37 runs the DynamicResources PostFilter before
preemption, and for a pod without claims it says "no new claims to deallocate" — which every FailedScheduling
message then carries. ``NoClaims`` reproduces that wording so messages read as a real cluster's do.
"""

from __future__ import annotations

from nanokube.api.errors import ApiError
from nanokube.client.interface import Client

from ..framework import Code, CycleState, Diagnosis, PostFilterResult, Status
from ..podinfo import PodInfo
from ..snapshot import Snapshot

BIND_ERROR_KEY = "DefaultBinder/error"


class DefaultBinder:
    name = "DefaultBinder"

    def __init__(self, client: Client | None) -> None:
        self.client = client

    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        if self.client is None:
            return Status.error("no client to bind with")
        try:
            await self.client.bind(pod.namespace, pod.name, node)
        except ApiError as err:
            state.data[BIND_ERROR_KEY] = err
            return Status.error(str(err))
        return Status()


class NoClaims:
    name = "DynamicResources"

    def post_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot,
                    diagnosis: Diagnosis) -> tuple[PostFilterResult | None, Status]:
        return None, Status.of(Code.UNSCHEDULABLE, "no new claims to deallocate")
