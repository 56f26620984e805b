"""Leader election on a coordination.k8s.io Lease, as client-go's leaderelection package does it.

Several processes run the same component; only the holder of the Lease acts. ``LeaderElector.run`` keeps
trying to acquire the Lease (free, or expired: not renewed for ``lease_duration``), runs ``lead`` while it holds
it, renews it every ``retry_period``, and cancels ``lead`` if it cannot renew within ``renew_deadline`` (another
process may take over then). Writes use resourceVersion preconditions, so two candidates never both win.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from nanokube.api.errors import AlreadyExists, ApiError, Conflict, NotFound
from nanokube.api.objects import deep_copy
from nanokube.util.timeutil import now, parse_rfc3339, rfc3339_micro

from .interface import JSON, Client

log = logging.getLogger(__name__)


@dataclass
class LeaseSettings:
    name: str
    identity: str
    namespace: str = "kube-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


class LeaderElector:
    def __init__(self, client: Client, settings: LeaseSettings) -> None:
        self.client = client
        self.settings = settings
        leases = client.registry.get("coordination.k8s.io", "v1", "leases")
        assert leases is not None
        self.leases = leases
        self.leading = asyncio.Event()

    async def run(self, lead: Callable[[asyncio.Event], Coroutine[Any, Any, None]], *, stop: asyncio.Event) -> None:
        """Campaign until ``stop``; while leading, ``lead(lost_or_stopped)`` runs and must return when its
        event is set."""
        s = self.settings
        while not stop.is_set():
            if not await self._try_acquire_or_renew():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), s.retry_period)
                continue
            log.info("%s: became leader of lease %s/%s", s.identity, s.namespace, s.name)
            self.leading.set()
            done = asyncio.Event()
            task = asyncio.create_task(lead(done))
            try:
                await self._renew_until_lost(stop, task)
            finally:
                self.leading.clear()
                done.set()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 10)
            if not stop.is_set():
                log.warning("%s: lost lease %s/%s", s.identity, s.namespace, s.name)
        await self._release()

    async def _renew_until_lost(self, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
        s = self.settings
        last_renew = asyncio.get_running_loop().time()
        while not stop.is_set() and not task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), s.retry_period)
            if stop.is_set():
                return
            if await self._try_acquire_or_renew():
                last_renew = asyncio.get_running_loop().time()
            elif asyncio.get_running_loop().time() - last_renew > s.renew_deadline:
                return

    async def _try_acquire_or_renew(self) -> bool:
        s = self.settings
        stamp = rfc3339_micro()
        try:
            lease = await self.client.get(self.leases, s.namespace, s.name)
        except NotFound:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": s.name, "namespace": s.namespace},
                    "spec": {"holderIdentity": s.identity, "leaseDurationSeconds": int(s.lease_duration),
                             "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 0}}
            try:
                await self.client.create(self.leases, s.namespace, body)
            except (AlreadyExists, ApiError):
                return False
            return True
        except ApiError as err:
            log.warning("%s: reading lease %s/%s failed: %s", s.identity, s.namespace, s.name, err)
            return False
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        if holder and holder != s.identity and not self._expired(spec):
            return False
        updated: JSON = deep_copy(lease)
        new_spec = updated.setdefault("spec", {})
        if holder != s.identity:
            new_spec["acquireTime"] = stamp
            new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        new_spec["holderIdentity"] = s.identity
        new_spec["leaseDurationSeconds"] = int(s.lease_duration)
        new_spec["renewTime"] = stamp
        try:
            await self.client.update(self.leases, s.namespace, updated)
        except (Conflict, NotFound):
            return False
        except ApiError as err:
            log.warning("%s: renewing lease %s/%s failed: %s", s.identity, s.namespace, s.name, err)
            return False
        return True

    @staticmethod
    def _expired(spec: JSON) -> bool:
        renew = spec.get("renewTime") or spec.get("acquireTime")
        if not renew:
            return True
        duration = float(spec.get("leaseDurationSeconds") or 15)
        return parse_rfc3339(renew) + timedelta(seconds=duration) < now()

    async def _release(self) -> None:
        """Give the lease up on a clean stop so a standby takes over at once."""
        s = self.settings
        try:
            lease = await self.client.get(self.leases, s.namespace, s.name)
            if (lease.get("spec") or {}).get("holderIdentity") != s.identity:
                return
            updated = deep_copy(lease)
            updated["spec"]["holderIdentity"] = None
            updated["spec"]["leaseDurationSeconds"] = 1
            await self.client.update(self.leases, s.namespace, updated)
        except ApiError:
            pass
