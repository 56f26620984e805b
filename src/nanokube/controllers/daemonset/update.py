"""Rolling a DaemonSet onto a new template: which old pods go and which nodes get a new pod now.

``rolling_update`` is kube's ``rollingUpdate`` as a pure function of the pods per node. Without surge it deletes
old pods while no more than ``maxUnavailable`` nodes lack an available pod (old pods that are not available go
at once), and the sync loop then creates the new pod on each emptied node. With ``maxSurge`` it instead starts
a new pod beside the old one on up to ``maxSurge`` nodes (at once where the old pod is unavailable), and deletes
the old pod once the new one has been available for ``minReadySeconds``. ``OnDelete`` does none of this: old pods
are replaced only when someone deletes them. Both limits round percentages of the desired node count up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nanokube.client.interface import JSON

from ..replicaset import is_pod_available
from .history import GENERATION_LABEL, HASH_LABEL


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: an int as is, ``"N%"`` of ``total`` rounded up or down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        share = int(text[:-1]) * total / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(text)


def _rolling(ds: JSON) -> JSON | None:
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return None
    rolling = strategy.get("rollingUpdate")
    return rolling if isinstance(rolling, dict) else None


def max_unavailable(ds: JSON, desired: int) -> int:
    rolling = _rolling(ds)
    return scaled_value(rolling.get("maxUnavailable"), desired, True) if rolling else 0


def max_surge(ds: JSON, desired: int) -> int:
    rolling = _rolling(ds)
    return scaled_value(rolling.get("maxSurge"), desired, True) if rolling else 0


def allows_surge(ds: JSON) -> bool:
    return max_surge(ds, 1) != 0


def is_pod_updated(pod: JSON, hash_: str, generation: int | None) -> bool:
    """A pod runs the current template if its hash label, or (for old pods) its generation label, says so."""
    labels = pod["metadata"].get("labels") or {}
    if generation is not None and labels.get(GENERATION_LABEL) == str(generation):
        return True
    return bool(hash_) and labels.get(HASH_LABEL) == hash_


def updated_pods_on_node(pods: list[JSON], hash_: str, generation: int | None
                         ) -> tuple[JSON | None, JSON | None, bool]:
    """(new pod, old pod, ok) among a node's pods not being deleted; not ok when either kind is doubled."""
    new = old = None
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        if is_pod_updated(pod, hash_, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


@dataclass
class Plan:
    """What a rolling update step asks of the sync loop."""

    delete: list[JSON] = field(default_factory=list)
    create: list[str] = field(default_factory=list)  # node names


def limits(ds: JSON, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable); a DaemonSet allowing neither still rolls one node at a time."""
    surge, unavailable = max_surge(ds, desired), max_unavailable(ds, desired)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def rolling_update(ds: JSON, node_pods: dict[str, list[JSON]], should_run: Callable[[str], bool], hash_: str,
                   generation: int | None, now: datetime) -> Plan:
    """One step of the rolling update. ``node_pods`` maps every node that should run the DaemonSet (empty
    lists included) and every node that has its pods; ``should_run`` says whether a node still should."""
    desired = sum(1 for name in node_pods if should_run(name))
    surge, unavailable = limits(ds, desired)
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)

    def available(pod: JSON) -> bool:
        return is_pod_available(pod, min_ready, now)

    if surge == 0:
        return _without_surge(node_pods, hash_, generation, unavailable, available)
    return _with_surge(node_pods, should_run, hash_, generation, surge, desired, available)


def _without_surge(node_pods: dict[str, list[JSON]], hash_: str, generation: int | None, max_unavailable_: int,
                   available: Callable[[JSON], bool]) -> Plan:
    plan = Plan()
    unavailable = 0
    candidates: list[JSON] = []
    for name in sorted(node_pods):
        new, old, ok = updated_pods_on_node(node_pods[name], hash_, generation)
        if not ok or (new is None) == (old is None):
            unavailable += 1  # the sync loop is still creating or pruning here
        elif new is not None:
            unavailable += not available(new)
        elif old is not None and not available(old):
            plan.delete.append(old)  # replacing it costs nothing
            unavailable += 1
        elif old is not None and unavailable < max_unavailable_:
            candidates.append(old)
    room = max(0, max_unavailable_ - unavailable)
    plan.delete.extend(candidates[:room])
    return plan


def _with_surge(node_pods: dict[str, list[JSON]], should_run: Callable[[str], bool], hash_: str,
                generation: int | None, max_surge_: int, desired: int, available: Callable[[JSON], bool]) -> Plan:
    plan = Plan()
    surged = available_count = 0
    leaving: list[JSON] = []  # available old pods on nodes the DaemonSet should leave
    candidates: list[str] = []
    for name in sorted(node_pods):
        new, old, ok = updated_pods_on_node(node_pods[name], hash_, generation)
        if not ok:
            surged += 1
            continue
        counted = old if old is not None else new
        available_count += counted is not None and available(counted)
        if old is None:
            continue  # nothing to replace; the sync loop creates a missing pod
        if new is None:
            if not should_run(name):
                (leaving if available(old) else plan.delete).append(old)
            elif not available(old):
                plan.create.append(name)  # nothing to lose: start the new pod now
            elif surged < max_surge_:
                candidates.append(name)
        elif not available(new):
            surged += 1  # waiting for the new pod
        else:
            plan.delete.append(old)  # the new pod took over
    # Pods on nodes the DaemonSet leaves go only while more pods are available than nodes need them.
    plan.delete.extend(leaving[:max(0, min(available_count - desired, len(leaving)))])
    room = max(0, min(max_surge_ - surged, len(candidates)))
    plan.create.extend(candidates[:room])
    return plan
