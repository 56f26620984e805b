"""Hand-made nodes and pods for scheduler tests, a snapshot builder, and the default framework over it."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import numpy as np

from nanokube.scheduler.framework import CycleState, Diagnosis, FilterResult, Status
from nanokube.scheduler.handle import Handle
from nanokube.scheduler.plugins import ProfileOptions, default_profile
from nanokube.scheduler.podinfo import PodInfo
from nanokube.scheduler.runtime import Framework
from nanokube.scheduler.snapshot import Snapshot

JSON = dict[str, Any]
T = TypeVar("T")
_uids = itertools.count(1)


def node(name: str, cpu: str = "4", memory: str = "8Gi", pods: str = "110", *, labels: dict[str, str] | None = None,
         taints: list[JSON] | None = None, unschedulable: bool = False, extra: dict[str, str] | None = None) -> JSON:
    resources = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    spec: JSON = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": spec, "status": {"allocatable": resources, "capacity": resources,
                                     "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, cpu: str | None = "100m", memory: str | None = "100Mi", *, namespace: str = "default",
        labels: dict[str, str] | None = None, priority: int | None = None, node_name: str = "", **spec: Any) -> JSON:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    body: JSON = {"containers": [{"name": "c", "image": "pause", "resources": {"requests": requests}}], **spec}
    if priority is not None:
        body["priority"] = priority
    if node_name:
        body["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}-{next(_uids)}",
                         "labels": labels or {}, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": body, "status": {"phase": "Pending"}}


def info(obj: JSON) -> PodInfo:
    return PodInfo.of(obj)


def snapshot(nodes: Iterable[JSON], placed: Iterable[tuple[JSON, str]] = ()) -> Snapshot:
    snap = Snapshot()
    for n in nodes:
        snap.set_node(n)
    for p, where in placed:
        snap.add_pod(info(p), where)
    return snap


def rows_of(snap: Snapshot, mask: np.ndarray) -> set[str]:
    """Names of the nodes whose rows are set in ``mask``."""
    return {i.name for i in snap.nodes() if mask[i.row]}


def passed(snap: Snapshot, result: FilterResult | None) -> set[str]:
    if result is None:
        return {i.name for i in snap.nodes()}
    return rows_of(snap, result.passed)


def reasons(snap: Snapshot, result: FilterResult | None, name: str) -> list[str]:
    if result is None:
        return []
    row = snap.table.rows[name]
    return [text for text, rows in result.reasons if rows[row]]


def framework(snap: Snapshot | None = None, handle: Handle | None = None, *, seed: int = 1,
              **options: Any) -> Framework:
    holder: list[Framework] = []
    options.setdefault("claims_note", False)
    profile = default_profile(handle or Handle(), ProfileOptions(**options), lambda: holder[0],
                              rng=random.Random(seed))
    fw = Framework(profile, rng=random.Random(seed))
    holder.append(fw)
    return fw


def run_filter(plugin: Any, pod_info: PodInfo, snap: Snapshot) -> tuple[FilterResult | None, CycleState, Status]:
    """PreFilter (if the plugin has one) then Filter, as the framework would for one plugin."""
    state = CycleState()
    status = Status()
    if hasattr(plugin, "pre_filter"):
        _, status = plugin.pre_filter(state, pod_info, snap)
        if status.skip:
            return None, state, status
        if not status.success:
            return None, state, status
    size = snap.table.size
    return plugin.filter(state, pod_info, snap, np.ones(size, np.bool_)), state, status


def diagnose(fw: Framework, pod_info: PodInfo, snap: Snapshot) -> Diagnosis:
    result = fw.schedule(CycleState(), pod_info, snap)
    assert result.diagnosis is not None, f"expected no fit, got {result.node}"
    return result.diagnosis


async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 10.0,
                     what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
