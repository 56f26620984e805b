"""Recording core/v1 Events, as client-go's EventRecorder does.

``EventRecorder.event(obj, type, reason, message)`` writes an Event about ``obj`` (``involvedObject``) from a
component. Repeats of the same (object, type, reason, message) within the aggregation window bump ``count``
and ``lastTimestamp`` of the existing Event instead of writing a new one, so a controller retrying in a loop
does not flood the store. Recording never raises: an Event that cannot be written is logged and dropped.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from typing import Any

from nanokube.api.errors import ApiError, NotFound
from nanokube.util.timeutil import rfc3339

from .interface import JSON, Client

log = logging.getLogger(__name__)
_AGGREGATE_SECONDS = 600.0
_REMEMBERED = 4096


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str = "") -> None:
        self.client = client
        self.component = component
        self.host = host
        events = client.registry.get("", "v1", "events")
        assert events is not None
        self.events = events
        # key -> (ns, name, count, at), oldest first; bounded, so a busy kubelet's recorder stays cheap.
        self._recent: OrderedDict[tuple[str, ...], tuple[str, str, int, float]] = OrderedDict()

    async def event(self, obj: JSON, type_: str, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        ref = {"kind": obj.get("kind", ""), "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
               "uid": meta.get("uid", ""), "apiVersion": obj.get("apiVersion", ""),
               "resourceVersion": meta.get("resourceVersion", "")}
        ref = {k: v for k, v in ref.items() if v}
        key = (ref.get("uid", ""), ref.get("name", ""), type_, reason, message)
        now = rfc3339()
        try:
            if await self._bump(key, now):
                return
            name = f"{meta.get('name', 'unknown')}.{uuid.uuid4().hex[:16]}"
            event: dict[str, Any] = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": ref, "reason": reason, "message": message, "type": type_,
                "source": {"component": self.component, **({"host": self.host} if self.host else {})},
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                "eventTime": None, "reportingComponent": self.component,
                "reportingInstance": self.host or self.component,
            }
            event.pop("eventTime")
            await self.client.create(self.events, namespace, event)
            self._recent[key] = (namespace, name, 1, time.monotonic())
            self._trim()
        except ApiError as err:
            log.warning("could not record event %s for %s/%s: %s", reason, namespace, meta.get("name"), err)

    async def _bump(self, key: tuple[str, ...], now: str) -> bool:
        seen = self._recent.get(key)
        if seen is None or time.monotonic() - seen[3] > _AGGREGATE_SECONDS:
            return False
        namespace, name, count, _ = seen
        try:
            await self.client.patch(self.events, namespace, name, {"count": count + 1, "lastTimestamp": now})
        except NotFound:
            self._recent.pop(key, None)
            return False
        self._recent[key] = (namespace, name, count + 1, time.monotonic())
        self._recent.move_to_end(key)
        return True

    def _trim(self) -> None:
        while len(self._recent) > _REMEMBERED:
            self._recent.popitem(last=False)


