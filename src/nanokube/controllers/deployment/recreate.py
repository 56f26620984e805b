"""The Recreate strategy (kube's ``recreate.go``): every old pod goes before any new one comes.

Old ReplicaSets are scaled to zero; the new ReplicaSet is created (or found) and scaled up only once no pod of
an old ReplicaSet is still running — pods in a terminal phase do not count, pods in an unknown state do.
"""

from __future__ import annotations

from nanokube.client.interface import JSON

from .progress import complete
from .sync import Rollout
from .util import active, actual_count, replicas


async def rollout_recreate(r: Rollout) -> None:
    new, old = await r.new_and_old(create=False)  # not yet: no new pod before the old ones are gone
    all_rses: list[JSON | None] = [*old, new]
    if await _scale_down_old(r, active(list(old))):
        await r.sync_rollout_status(all_rses, new)
        return
    if old_pods_running(r, new, old):
        await r.sync_rollout_status(all_rses, new)
        return
    if new is None:
        new, old = await r.new_and_old(create=True)
        assert new is not None
        all_rses = [*old, new]
    await r.scale_rs(new, replicas(r.d))
    if complete(r.d, r.d["status"]):
        await r.cleanup(old)
    await r.sync_rollout_status(all_rses, new)


async def _scale_down_old(r: Rollout, old: list[JSON]) -> bool:
    scaled = False
    for rs in old:
        if replicas(rs):
            done, _ = await r.scale_rs(rs, 0)
            scaled = scaled or done
    return scaled


def old_pods_running(r: Rollout, new: JSON | None, old: list[JSON]) -> bool:
    if actual_count(list(old)) > 0:
        return True
    new_uid = new["metadata"]["uid"] if new is not None else None
    for uid, pods in r.pods_by_rs.items():
        if uid == new_uid:
            continue
        if any((p.get("status") or {}).get("phase") not in ("Succeeded", "Failed") for p in pods):
            return True
    return False
