"""What the Pod syncer's parts share: its settings, the wake-up time a sync asks for, and what it remembers of
each Pod between syncs.

``PodSyncer`` (sync.py) orchestrates a Pod; ``ContainerRunner`` (sync_containers.py) pulls, starts, restarts
and stops its containers. Both read and write the same per-Pod memory (waiting reasons shown in the status,
containers killed by a probe, failed pulls), so it lives here, where neither module has to import the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass
class SyncSettings:
    node_name: str
    host_ips: tuple[str, ...]
    runtime_name: str = "fake"
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    image_backoff_initial: float = 1.0


@dataclass
class Wake:
    """When a sync wants the Pod looked at again: the soonest of what its steps asked for (None: not at all)."""

    at: float | None = None

    def soon(self, seconds: float) -> None:
        seconds = max(seconds, 0.01)
        self.at = seconds if self.at is None else min(self.at, seconds)


@dataclass
class PodMemory:
    """What the syncer remembers of a Pod between syncs: waiting reasons by container name, the ids of
    containers it killed for failing a liveness or startup probe (restarted whatever their exit code), and
    when each image's last pull failed."""

    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    probe_killed: set[str] = field(default_factory=set)
    pull_failed: dict[str, float] = field(default_factory=dict)  # image -> when its last pull failed


class PodMemories:
    """``PodMemory`` by Pod uid, made on first write and dropped by ``forget``."""

    def __init__(self) -> None:
        self._by_uid: dict[str, PodMemory] = {}

    def get(self, uid: str) -> PodMemory | None:
        return self._by_uid.get(uid)

    def of(self, uid: str) -> PodMemory:
        return self._by_uid.setdefault(uid, PodMemory())

    def forget(self, uid: str) -> None:
        self._by_uid.pop(uid, None)

    def set_waiting(self, pod: JSON, name: str, reason: str, message: str) -> None:
        """The container shows as waiting with this reason until ``clear_waiting`` (it started)."""
        self.of(pod["metadata"]["uid"]).waiting[name] = (reason, message)

    def clear_waiting(self, pod: JSON, name: str) -> None:
        memory = self.get(pod["metadata"]["uid"])
        if memory is not None:
            memory.waiting.pop(name, None)

    def probe_killed(self, uid: str, container_id: str) -> bool:
        memory = self.get(uid)
        return memory is not None and container_id in memory.probe_killed


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def pod_grace(pod: JSON) -> int:
    """Seconds the Pod's containers get to stop: the deletion's grace period, else the spec's, else 30."""
    meta, spec = pod["metadata"], pod["spec"]
    grace = meta.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds")
    return 30 if grace is None else int(grace)
