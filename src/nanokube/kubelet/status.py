"""Writing Pod statuses to the API server: the kubelet's status manager, for one node or thousands.

Pod workers hand in the status they computed (``set_status``); the manager keeps each Pod's condition
``lastTransitionTime`` and ``startTime`` across updates, and a single writer task sends what changed as a
strategic merge patch on ``pods/status`` (only changed fields; a condition's dropped ``reason`` is sent as
null), many Pods at a time. A Pod whose status changes again before its write goes out is written once, with
the newest status; a status equal to what the API already shows is not written at all. That is what lets one
process keep up with ten thousand Pods: writes are coalesced and batched, never one task per Pod.

When a worker has torn a deleted Pod down it asks for ``delete=True``: once the final status is in, the Pod is
deleted with grace period 0 and a uid precondition, as the kubelet confirms a graceful deletion.

Newest wins: the manager compares against whichever it saw last of the informer's copy and its own write's
response (by ``resourceVersion``), so a write in flight is never undone by a stale cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from nanokube.api.errors import ApiError, Conflict, NotFound
from nanokube.client.interface import JSON, Client

from .podstatus import KUBELET_CONDITIONS, rfc3339

log = logging.getLogger(__name__)
# Fields of a Pod status the kubelet owns whole: absent from a new status means "clear it".
_CLEARED_WHEN_ABSENT = ("reason", "message")
_CONDITION_OPTIONAL = ("reason", "message", "observedGeneration")


def _rv(obj: JSON | None) -> int:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def stamp_status(status: JSON, base: JSON, now: str) -> JSON:
    """``status`` with ``lastTransitionTime`` kept from ``base`` for unchanged conditions and ``startTime`` kept."""
    old = {c.get("type"): c for c in base.get("conditions") or []}
    conditions = []
    for cond in status.get("conditions") or []:
        if "lastTransitionTime" not in cond:
            prior = old.get(cond["type"])
            same = prior is not None and prior.get("status") == cond["status"] and prior.get("lastTransitionTime")
            cond = {**cond, "lastTransitionTime": prior["lastTransitionTime"] if same and prior else now}
        conditions.append(cond)
    stamped = dict(status)
    stamped["conditions"] = conditions
    stamped["startTime"] = base.get("startTime") or status.get("startTime") or now
    return stamped


def _conditions_patch(old: list[JSON], new: list[JSON]) -> list[JSON]:
    """The kubelet's own conditions that changed. Others (readiness gates, DisruptionTarget) belong to whoever
    set them: the kubelet's copy may be older than the API's, so writing it back could undo their change."""
    by_type = {c.get("type"): c for c in old}
    patch = []
    for cond in new:
        if cond["type"] not in KUBELET_CONDITIONS:
            continue
        prior = by_type.get(cond["type"])
        if prior is None:
            patch.append(cond)
            continue
        change = {k: v for k, v in cond.items() if prior.get(k) != v}
        change.update((k, None) for k in _CONDITION_OPTIONAL if k in prior and k not in cond)
        if change:
            change["type"] = cond["type"]
            patch.append(change)
    return patch


def status_patch(old: JSON, new: JSON) -> JSON:
    """The strategic-merge patch taking status ``old`` to ``new`` (empty when nothing changes)."""
    patch: JSON = {}
    for key, value in new.items():
        if key == "conditions":
            conditions = _conditions_patch(old.get("conditions") or [], value)
            if conditions:
                patch["conditions"] = conditions
        elif old.get(key) != value:
            patch[key] = value
    for key in _CLEARED_WHEN_ABSENT:
        if key in old and key not in new:
            patch[key] = None
    return patch


class StatusManager:
    def __init__(self, client: Client, *, concurrency: int = 64,
                 lookup: Callable[[str, str], JSON | None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """``lookup(namespace, name)`` returns the Pod the informer holds under that name (or None), so a
        write never lands on a successor Pod that reuses the name."""
        pods = client.registry.get("", "v1", "pods")
        assert pods is not None
        self.client = client
        self.pods = pods
        self.concurrency = concurrency
        self.lookup = lookup
        self.clock = clock
        self._seen: dict[str, JSON] = {}  # uid -> newest Pod object seen (informer or write response)
        self._cache: dict[str, JSON] = {}  # uid -> the status we want the API to show
        self._dirty: dict[str, None] = {}  # uids to write, in order
        self._delete: set[str] = set()
        self._wake = asyncio.Event()
        self.writes = 0  # patches sent (for benchmarks and tests)

    # -- inputs -------------------------------------------------------------------------------------------
    def observe(self, pod: JSON) -> None:
        """The informer saw ``pod``; keep it if it is newer than what we hold, and write our status back if
        someone else changed it (the node lifecycle controller marking Pods not ready, say)."""
        uid = pod["metadata"]["uid"]
        held = self._seen.get(uid)
        if held is not None and _rv(pod) < _rv(held):
            return
        self._seen[uid] = pod
        wanted = self._cache.get(uid)
        if wanted is not None and uid not in self._dirty and status_patch(pod.get("status") or {}, wanted):
            self._dirty[uid] = None
            self._wake.set()

    def cached(self, uid: str) -> JSON | None:
        """The status last handed in for ``uid`` (the base for the next one), or None."""
        return self._cache.get(uid)

    def set_status(self, pod: JSON, status: JSON, *, delete: bool = False) -> None:
        uid = pod["metadata"]["uid"]
        self.observe(pod)
        view = self._seen[uid]
        base = self._cache.get(uid) or view.get("status") or {}
        stamped = stamp_status(status, base, rfc3339(self.clock()))
        if delete:
            self._delete.add(uid)
        unchanged = stamped == self._cache.get(uid) and not delete and uid not in self._dirty
        if unchanged and not status_patch(view.get("status") or {}, stamped):
            return
        self._cache[uid] = stamped
        self._dirty[uid] = None
        self._wake.set()

    def forget(self, uid: str) -> None:
        """The Pod is gone: drop everything held for it."""
        self._seen.pop(uid, None)
        self._cache.pop(uid, None)
        self._dirty.pop(uid, None)
        self._delete.discard(uid)

    def drop_pending(self, uids: Iterable[str]) -> None:
        """Forget unsent writes for ``uids`` (their node stopped); the next sync computes them afresh."""
        for uid in uids:
            self._dirty.pop(uid, None)
            self._cache.pop(uid, None)

    def pending(self) -> int:
        return len(self._dirty)

    # -- the writer ---------------------------------------------------------------------------------------
    async def run(self, *, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if not self._dirty:
                    self._wake.clear()
                    waking = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait({waking, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    waking.cancel()
                    continue
                await self.flush()
        finally:
            stopping.cancel()

    async def flush(self) -> None:
        """Write everything pending, ``concurrency`` Pods at a time."""
        while self._dirty:
            batch = []
            for uid in self._dirty:
                batch.append(uid)
                if len(batch) >= self.concurrency:
                    break
            for uid in batch:
                del self._dirty[uid]
            await asyncio.gather(*(self._write(uid) for uid in batch))

    async def _write(self, uid: str) -> None:
        status = self._cache.get(uid)
        view = self._seen.get(uid)
        if status is None or view is None:
            return
        meta = view["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        if self.lookup is not None:
            current = self.lookup(namespace, name)
            if current is None or current["metadata"].get("uid") != uid:
                self.forget(uid)  # deleted, or replaced by a Pod of the same name
                return
        try:
            patch = status_patch(view.get("status") or {}, status)
            if patch:
                body: dict[str, Any] = {"metadata": {"uid": uid}, "status": patch}
                self.writes += 1
                written = await self.client.patch(self.pods, namespace, name, body, patch_type="strategic",
                                                  subresource="status")
                if written["metadata"].get("uid") != uid:
                    self.forget(uid)
                    return
                # The stored status is what we want from now on: it shares memory with the store, and a field
                # the server normalises can never look like someone else's change to be written back forever.
                if uid in self._cache and uid not in self._dirty:
                    self._cache[uid] = written.get("status") or {}
                self.observe(written)
            if uid in self._delete and uid not in self._dirty:
                await self._confirm_deletion(uid, namespace, name)
        except NotFound:
            self.forget(uid)
        except Conflict:
            self._retry(uid, 0.05)
        except ApiError as err:
            log.warning("status of pod %s/%s not written: %s", namespace, name, err)
            self._retry(uid, 1.0)

    async def _confirm_deletion(self, uid: str, namespace: str, name: str) -> None:
        with contextlib.suppress(NotFound, Conflict):  # gone already, or a new Pod took the name
            await self.client.delete(self.pods, namespace, name, grace_period_seconds=0, uid=uid)
        self.forget(uid)

    def _retry(self, uid: str, delay: float) -> None:
        def again() -> None:
            if uid in self._cache:
                self._dirty[uid] = None
                self._wake.set()

        asyncio.get_running_loop().call_later(delay, again)
