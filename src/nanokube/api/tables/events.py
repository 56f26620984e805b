"""The Event printer, shared by core/v1 and events.k8s.io/v1 Events.

Kubernetes stores both API versions as one internal Event and prints them with one ``printEvent``; an
events.k8s.io object names its fields differently (``regarding``, ``note``, ``deprecatedFirstTimestamp``, ...),
so ``as_core_event`` maps it onto the core field names first. LAST SEEN falls back from ``lastTimestamp`` to the
first-seen time, and a series (``series.lastObservedTime``/``count``) overrides both the time and the count;
a singleton event of the new API has no count and shows 1. OBJECT is ``kind/name`` with the kind lowercased.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nanokube.api.tables.common import (
    JSON,
    META,
    Column,
    Context,
    Printer,
    name_of,
    number,
    parse_time,
    since,
    text,
    wide,
)

_EVENT = "io.k8s.api.core.v1.Event"
_REF = "io.k8s.api.core.v1.ObjectReference"

# events.k8s.io/v1 field -> core/v1 field
_RENAMES = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "deprecatedSource": "source",
}


def as_core_event(event: JSON) -> JSON:
    """The core/v1 spelling of an events.k8s.io/v1 Event (a shallow view; nothing is copied deeply)."""
    if not any(key in event for key in _RENAMES):
        return event
    return {_RENAMES.get(key, key): value for key, value in event.items()}


def event_target(event: JSON) -> str:
    kind = text(event, "involvedObject", "kind").lower()
    name = text(event, "involvedObject", "name")
    return f"{kind}/{name}" if name else kind


def event_source(event: JSON) -> str:
    """``formatEventSource``: "component, host", falling back to the reporting controller and instance."""
    component = text(event, "source", "component") or text(event, "reportingController")
    host = text(event, "source", "host") or text(event, "reportingInstance")
    return f"{component}, {host}" if host else component


def _seen(event: JSON, ctx: Context) -> tuple[str, str, int]:
    """(last seen, first seen, count) as ``printEvent`` derives them."""
    first = since(event.get("firstTimestamp"), ctx.now)
    if parse_time(event.get("firstTimestamp")) is None:
        first = since(event.get("eventTime"), ctx.now)
    last = since(event.get("lastTimestamp"), ctx.now)
    if parse_time(event.get("lastTimestamp")) is None:
        last = first
    count = number(event, "count")
    series = event.get("series")
    if isinstance(series, Mapping):
        last = since(series.get("lastObservedTime"), ctx.now)
        count = number(series, "count")
    elif count == 0:
        count = 1
    return last, first, count


def event_cells(obj: JSON, ctx: Context) -> list[Any]:
    event = as_core_event(obj)
    last, first, count = _seen(event, ctx)
    return [
        last, text(event, "type"), text(event, "reason"), event_target(event),
        text(event, "involvedObject", "fieldPath"), event_source(event), text(event, "message").strip(),
        first, count, name_of(event),
    ]


EVENT = Printer((
    Column("Last Seen", doc=(_EVENT, "lastTimestamp")),
    Column("Type", doc=(_EVENT, "type")),
    Column("Reason", doc=(_EVENT, "reason")),
    Column("Object", doc=(_EVENT, "involvedObject")),
    wide("Subobject", (_REF, "fieldPath")),
    wide("Source", (_EVENT, "source")),
    Column("Message", doc=(_EVENT, "message")),
    wide("First Seen", (_EVENT, "firstTimestamp")),
    wide("Count", (_EVENT, "count")),
    Column("Name", format="name", priority=1, doc=(META, "name")),
), event_cells)

