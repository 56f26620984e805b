"""The RollingUpdate strategy (kube's ``rolling.go``).

Each sync does one step: grow the new ReplicaSet as far as maxSurge allows; if it could not grow, shrink old
ReplicaSets as far as maxUnavailable allows — first their unavailable pods, which cost no availability, then
available ones down to ``replicas - maxUnavailable`` available in total. Once complete, old history beyond
``revisionHistoryLimit`` is deleted. The ReplicaSet updates wake the Deployment for the next step.
"""

from __future__ import annotations

from nanokube.client.interface import JSON

from .progress import complete
from .sync import Rollout
from .util import (
    active,
    available_count,
    by_creation,
    max_unavailable,
    new_rs_new_replicas,
    replica_count,
    replicas,
)


async def rollout_rolling(r: Rollout) -> None:
    new, old = await r.new_and_old(create=True)
    assert new is not None
    all_rses: list[JSON | None] = [*old, new]
    if await reconcile_new(r, all_rses, new) or await reconcile_old(r, all_rses, active(list(old)), new):
        await r.sync_rollout_status(all_rses, new)
        return
    if complete(r.d, r.d["status"]):
        await r.cleanup(old)
    await r.sync_rollout_status(all_rses, new)


async def reconcile_new(r: Rollout, all_rses: list[JSON | None], new: JSON) -> bool:
    want = replicas(r.d)
    if replicas(new) == want:
        return False
    if replicas(new) > want:
        scaled, _ = await r.scale_rs(new, want)
        return scaled
    scaled, _ = await r.scale_rs(new, new_rs_new_replicas(r.d, [rs for rs in all_rses if rs is not None], new))
    return scaled


async def reconcile_old(r: Rollout, all_rses: list[JSON | None], old: list[JSON], new: JSON) -> bool:
    if replica_count(list(old)) == 0:
        return False  # nothing left to shrink
    min_available = replicas(r.d) - max_unavailable(r.d)
    new_unavailable = replicas(new) - int((new.get("status") or {}).get("availableReplicas") or 0)
    max_scaled_down = replica_count(all_rses) - min_available - new_unavailable
    if max_scaled_down <= 0:
        return False
    old, cleaned = await _cleanup_unhealthy(r, old, max_scaled_down)
    scaled = await _scale_down_old(r, [*old, new], old)
    return cleaned + scaled > 0


async def _cleanup_unhealthy(r: Rollout, old: list[JSON], limit: int) -> tuple[list[JSON], int]:
    """Scale old ReplicaSets down by their unavailable pods first: removing them costs no availability and
    keeps them from blocking the rollout."""
    old = sorted(old, key=by_creation)
    total = 0
    for i, rs in enumerate(old):
        if total >= limit:
            break
        size = replicas(rs)
        available = int((rs.get("status") or {}).get("availableReplicas") or 0)
        if size == 0 or size == available:
            continue
        down = min(limit - total, size - available)
        _, old[i] = await r.scale_rs(rs, size - down)
        total += down
    return old, total


async def _scale_down_old(r: Rollout, all_rses: list[JSON | None], old: list[JSON]) -> int:
    min_available = replicas(r.d) - max_unavailable(r.d)
    available = available_count(all_rses)
    if available <= min_available:
        return 0
    budget = available - min_available
    total = 0
    for rs in sorted(old, key=by_creation):
        if total >= budget:
            break
        if replicas(rs) == 0:
            continue
        down = min(replicas(rs), budget - total)
        await r.scale_rs(rs, replicas(rs) - down)
        total += down
    return total
