"""BackgroundEvents (kubelet/sync_state.py): the syncer's Events are queued, written per Pod in order, never
dropped, and written out on close."""

from __future__ import annotations

import asyncio
from typing import Any

from nanokube.kubelet.sync_state import BackgroundEvents

JSON = dict[str, Any]


def pod(name: str) -> JSON:
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "7"},
            "spec": {"containers": []}}


class Sink:
    """Records (pod name, reason); each write waits for ``gate`` and may be told to fail."""

    def __init__(self) -> None:
        self.written: list[tuple[str, str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: set[str] = set()

    async def event(self, obj: JSON, type_: str, reason: str, message: str) -> None:
        await self.gate.wait()
        if reason in self.fail:
            raise RuntimeError("boom")
        self.written.append((obj["metadata"]["name"], reason))


async def test_event_returns_before_the_write_and_keeps_each_pods_order() -> None:
    sink = Sink()
    sink.gate.clear()
    events = BackgroundEvents(sink, writers=2)
    for reason in ("Pulled", "Created", "Started"):
        await events.event(pod("a"), "Normal", reason, "")
        await events.event(pod("b"), "Normal", reason, "")
    assert sink.written == []  # nothing written yet, yet every call returned
    sink.gate.set()
    await events.flush()
    for name in ("a", "b"):
        assert [r for n, r in sink.written if n == name] == ["Pulled", "Created", "Started"]


async def test_only_the_reference_is_kept() -> None:
    sink = Sink()
    seen: list[JSON] = []
    original = sink.event

    async def keep(obj: JSON, type_: str, reason: str, message: str) -> None:
        seen.append(obj)
        await original(obj, type_, reason, message)

    sink.event = keep  # type: ignore[method-assign]
    events = BackgroundEvents(sink)
    p = pod("a")
    await events.event(p, "Normal", "Created", "")
    p["metadata"]["name"] = "changed"
    await events.flush()
    assert seen[0]["metadata"] == {"name": "a", "namespace": "default", "uid": "uid-a", "resourceVersion": "7"}
    assert "spec" not in seen[0] and seen[0]["kind"] == "Pod"


async def test_a_full_queue_makes_the_caller_wait_instead_of_dropping() -> None:
    sink = Sink()
    sink.gate.clear()
    events = BackgroundEvents(sink, limit=2)
    await events.event(pod("a"), "Normal", "One", "")
    await events.event(pod("a"), "Normal", "Two", "")
    third = asyncio.ensure_future(events.event(pod("a"), "Normal", "Three", ""))
    await asyncio.sleep(0.05)
    assert not third.done()
    sink.gate.set()
    await third
    await events.flush()
    assert [r for _, r in sink.written] == ["One", "Two", "Three"]


async def test_a_failed_write_does_not_stop_the_next() -> None:
    sink = Sink()
    sink.fail.add("Created")
    events = BackgroundEvents(sink)
    for reason in ("Pulled", "Created", "Started"):
        await events.event(pod("a"), "Normal", reason, "")
    await events.flush()
    assert [r for _, r in sink.written] == ["Pulled", "Started"]


async def test_close_writes_what_is_queued_and_later_events_at_once() -> None:
    sink = Sink()
    sink.gate.clear()
    events = BackgroundEvents(sink)
    await events.event(pod("a"), "Normal", "Created", "")
    closing = asyncio.ensure_future(events.close())
    await asyncio.sleep(0.02)
    assert not closing.done()  # waits for the queued write
    sink.gate.set()
    await closing
    assert sink.written == [("a", "Created")]
    await events.event(pod("a"), "Normal", "Killing", "")
    assert sink.written[-1] == ("a", "Killing")  # written before event() returned
