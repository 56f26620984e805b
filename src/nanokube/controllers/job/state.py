"""What one Job sync works with, and the settings and shared state of the Job controller.

``SyncContext`` is kube's ``syncJobCtx``: the Job being synced (a private copy), its Pods from the cache, and
the counts and index sets computed along the way. ``JobControllerState`` declares the attributes the
controller's parts (``manage``, ``tracking``) share, so each part can be its own small module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nanokube.api.registry import Resource
from nanokube.client.events import EventRecorder
from nanokube.client.interface import JSON, Client
from nanokube.client.workqueue import WorkQueue

from .backoff import BackoffRecord, BackoffStore
from .expectations import Expectations, FinalizerExpectations
from .indexed import Intervals
from .podcontrol import PodControl
from .pods import deleting, phase

Clock = Callable[[], datetime]


@dataclass
class JobSettings:
    """Tunables; the defaults are kube-controller-manager's."""

    pod_failure_backoff: float = 10.0  # seconds before the first recreation after a failure, then doubling
    pod_failure_backoff_max: float = 600.0
    sync_batch: float = 0.0  # delay pod-event syncs by this much so bursts collapse (kube: 1 s)
    max_pods_per_sync: int = 500
    max_uncounted: int = 500
    workers: int = 2


@dataclass
class SyncContext:
    job: JSON
    pods: list[JSON]
    active_pods: list[JSON]
    ready: int
    terminating: int
    uncounted_succeeded: set[str]
    uncounted_failed: set[str]
    expected_rm: set[str]
    backoff: BackoffRecord
    succeeded: int = 0
    failed: int = 0
    finished: dict[str, Any] | None = None
    prev_succeeded_indexes: Intervals = field(default_factory=list)
    succeeded_indexes: Intervals = field(default_factory=list)
    failed_indexes: Intervals | None = None
    delayed_per_index: dict[int, JSON] = field(default_factory=dict)
    requeue: list[float] = field(default_factory=list)


class JobControllerState:
    client: Client
    jobs_resource: Resource
    queue: WorkQueue
    pod_control: PodControl
    recorder: EventRecorder
    expectations: Expectations
    finalizer_expectations: FinalizerExpectations
    backoff_store: BackoffStore
    settings: JobSettings
    now: Clock


# -- reading a Job's spec ---------------------------------------------------------------------------------
def spec(job: JSON) -> dict[str, Any]:
    value = job.get("spec")
    return value if isinstance(value, dict) else {}


def is_indexed(job: JSON) -> bool:
    return spec(job).get("completionMode") == "Indexed"


def completions(job: JSON) -> int | None:
    value = spec(job).get("completions")
    return None if value is None else int(value)


def has_backoff_limit_per_index(job: JSON) -> bool:
    return spec(job).get("backoffLimitPerIndex") is not None


def suspended(job: JSON) -> bool:
    return spec(job).get("suspend") is True


def only_replace_failed(job: JSON) -> bool:
    """Replace a Pod only once it has failed, not while it terminates (``podReplacementPolicy: Failed``)."""
    return spec(job).get("podReplacementPolicy") == "Failed" or spec(job).get("podFailurePolicy") is not None


def is_pod_failed(pod: JSON, job: JSON) -> bool:
    """Failed, or (unless only failed Pods are replaced) deleted before it succeeded."""
    if phase(pod) == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return deleting(pod) and phase(pod) != "Succeeded"


def job_key(job: JSON) -> str:
    m = job.get("metadata") or {}
    return f"{m.get('namespace', '')}/{m.get('name', '')}"
