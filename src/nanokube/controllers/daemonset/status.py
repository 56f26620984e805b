"""DaemonSet status, counted per node exactly as ``kubectl get ds`` and ``kubectl rollout status`` read it.

Of the nodes that should run the DaemonSet (``desiredNumberScheduled``), those with a pod are
``currentNumberScheduled``; each such node is judged by its oldest pod: ready (``numberReady``), available for
``minReadySeconds`` (``numberAvailable``), running the current revision (``updatedNumberScheduled``). Nodes
that should not run it but have a pod are ``numberMisscheduled``; ``numberUnavailable`` is desired minus
available. ``kubectl rollout status ds/x`` finishes once ``observedGeneration`` has caught up with
``metadata.generation`` and both updated and available reach desired; ``observedGeneration`` therefore only
advances in a sync that acted on the DaemonSet, never in one that waited on its expectations.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from nanokube.client.interface import JSON

from ..replicaset import is_pod_available, is_pod_ready
from .pods import age_order
from .update import is_pod_updated

COUNTS = ("desiredNumberScheduled", "currentNumberScheduled", "numberMisscheduled", "numberReady",
          "updatedNumberScheduled", "numberAvailable", "numberUnavailable")


def count(ds: JSON, node_names: list[str], node_pods: dict[str, list[JSON]], should_run: Callable[[str], bool],
          hash_: str, generation: int | None, now: datetime) -> dict[str, int]:
    """The seven counts of ``status`` (``updateDaemonSetStatus``)."""
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    counts = dict.fromkeys(COUNTS, 0)
    for name in node_names:
        pods = node_pods.get(name) or []
        if not should_run(name):
            counts["numberMisscheduled"] += bool(pods)
            continue
        counts["desiredNumberScheduled"] += 1
        if not pods:
            continue
        counts["currentNumberScheduled"] += 1
        pod = min(pods, key=age_order)
        if is_pod_ready(pod):
            counts["numberReady"] += 1
            counts["numberAvailable"] += is_pod_available(pod, min_ready, now)
        counts["updatedNumberScheduled"] += is_pod_updated(pod, hash_, generation)
    counts["numberUnavailable"] = counts["desiredNumberScheduled"] - counts["numberAvailable"]
    return counts


def needs_write(ds: JSON, counts: dict[str, int], observe: bool) -> bool:
    """Whether the stored status differs from these counts (or lags the generation we observed)."""
    status = ds.get("status") or {}
    if any(int(status.get(k) or 0) != v for k, v in counts.items()):
        return True
    return observe and int(status.get("observedGeneration") or 0) < int(ds["metadata"].get("generation") or 0)


def new_status(ds: JSON, counts: dict[str, int], observe: bool) -> JSON:
    """The status to write: the counts, the generation seen (when this sync acted on it), the rest kept."""
    status = dict(ds.get("status") or {})
    status.update(counts)
    if observe:
        status["observedGeneration"] = int(ds["metadata"].get("generation") or 0)
    return status


def recheck_after(ds: JSON, counts: dict[str, int]) -> float | None:
    """Look again after minReadySeconds while ready pods are not yet counted available."""
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    if min_ready > 0 and counts["numberReady"] != counts["numberAvailable"]:
        return float(min_ready)
    return None
