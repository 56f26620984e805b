"""Recording core/v1 Events, as client-go's EventRecorder does.

``EventRecorder.event(obj, type, reason, message)`` writes an Event about ``obj`` (``involvedObject``) from a
component, after client-go's EventCorrelator (eventcache.py) has had its say:

- repeats of the same (object, type, reason, message) bump ``count`` and ``lastTimestamp`` of the existing Event,
  so a controller retrying in a loop does not flood the store;
- the 10th and later Events within 10 minutes that differ only by message (``Created pod: web-1``, ``-2``, ...)
  become one Event ``(combined from similar events): <latest message>`` whose count goes up;
- past a burst of 25 writes about one object, one more is allowed every 5 minutes; the rest are dropped and
  logged at debug level.

Recording never raises: an Event that cannot be written is logged and dropped. ``clock`` (epoch seconds) is
injectable so tests can step through the windows; it also stamps the Event's timestamps.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from nanokube.api.errors import AlreadyExists, ApiError, NotFound
from nanokube.util.timeutil import rfc3339

from .eventcache import Clock, Correlated, EventCorrelator
from .interface import JSON, Client

log = logging.getLogger(__name__)


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str = "", *, clock: Clock = time.time,
                 correlator: EventCorrelator | None = None) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.clock = clock
        events = client.registry.get("", "v1", "events")
        assert events is not None
        self.events = events
        # One correlator per recorder; its caches are LRU-bounded, so a busy kubelet's recorder stays cheap.
        self.correlator = correlator or EventCorrelator(clock)

    async def event(self, obj: JSON, type_: str, reason: str, message: str) -> None:
        event = self._make(obj, type_, reason, message)
        outcome = self.correlator.correlate(event)
        meta = outcome.event["metadata"]
        if outcome.skip:
            log.debug("dropped event %s for %s/%s: too many events about this object", reason,
                      meta["namespace"], (obj.get("metadata") or {}).get("name"))
            return
        try:
            await self._write(outcome)
        except ApiError as err:
            log.warning("could not record event %s for %s/%s: %s", reason, meta["namespace"],
                        (obj.get("metadata") or {}).get("name"), err)

    def _make(self, obj: JSON, type_: str, reason: str, message: str) -> JSON:
        meta = obj.get("metadata") or {}
        ref = {"kind": obj.get("kind", ""), "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
               "uid": meta.get("uid", ""), "apiVersion": obj.get("apiVersion", ""),
               "resourceVersion": meta.get("resourceVersion", "")}
        now = rfc3339(datetime.fromtimestamp(self.clock(), UTC))
        return {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta.get('name', 'unknown')}.{uuid.uuid4().hex[:16]}",
                         "namespace": meta.get("namespace") or "default"},
            "involvedObject": {k: v for k, v in ref.items() if v}, "reason": reason, "message": message,
            "type": type_, "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1, "reportingComponent": self.component,
            "reportingInstance": self.host or self.component,
        }

    async def _write(self, outcome: Correlated) -> None:
        """Patch the earlier Event, or create one; a patched Event that is gone (expired, deleted) is created
        again with the count so far; a create racing another for the same Event leaves the other's."""
        event = outcome.event
        namespace, name = event["metadata"]["namespace"], event["metadata"]["name"]
        if outcome.patch is not None:
            try:
                await self.client.patch(self.events, namespace, name, outcome.patch)
                return
            except NotFound:
                pass
        body: dict[str, Any] = {**event, "metadata": {"name": name, "namespace": namespace}}
        try:
            await self.client.create(self.events, namespace, body)
        except AlreadyExists:
            log.debug("event %s/%s was created meanwhile", namespace, name)
