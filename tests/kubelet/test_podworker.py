"""Pod workers (one sync at a time per Pod, again-after-update, timers, retries) and crash-loop back-off."""

from __future__ import annotations

import asyncio

import pytest

from nanokube.kubelet.backoff import Backoff, go_duration
from nanokube.kubelet.podworker import PodWorkers


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("seconds", "text"), [(10, "10s"), (1.5, "1.5s"), (80, "1m20s"), (300, "5m0s"),
                                                (3600, "1h0m0s"), (0.25, "250ms"), (0.0015, "1.5ms"), (0.000012, "12µs"),
                                                (0, "0s")])
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_backoff_doubles_up_to_the_cap_and_resets_after_a_quiet_spell() -> None:
    clock = Clock()
    backoff = Backoff(10, 40, clock)
    assert not backoff.in_backoff_since("pod", "c", clock.now)  # first restart: immediate
    backoff.next("pod", "c", clock.now)
    assert backoff.get("pod", "c") == 10
    clock.now += 1
    assert backoff.in_backoff_since("pod", "c", clock.now)  # failed again at once: wait 10 s
    clock.now += 10
    assert not backoff.in_backoff_since("pod", "c", clock.now - 10)
    delays = []
    for _ in range(4):
        backoff.next("pod", "c", clock.now)
        delays.append(backoff.get("pod", "c"))
        clock.now += 1
    assert delays == [20, 40, 40, 40]
    clock.now += 100  # quiet for more than twice the cap
    backoff.next("pod", "c", clock.now)
    assert backoff.get("pod", "c") == 10
    backoff.forget("pod")
    assert backoff.get("pod", "c") == 0


async def test_syncs_of_one_pod_never_overlap_and_updates_during_a_sync_run_it_again() -> None:
    active: set[str] = set()
    overlaps = 0
    calls: list[str] = []
    gate = asyncio.Event()

    async def sync(key: str) -> float | None:
        nonlocal overlaps
        if key in active:
            overlaps += 1
        active.add(key)
        calls.append(key)
        await gate.wait()
        active.discard(key)
        return None

    workers = PodWorkers(sync)
    workers.update("a")
    workers.update("b")
    await asyncio.sleep(0)
    workers.update("a")
    workers.update("a")  # coalesced with the one before
    gate.set()
    for _ in range(50):
        await asyncio.sleep(0)
        if not len(workers):
            break
    assert overlaps == 0
    assert calls.count("a") == 2 and calls.count("b") == 1
    await workers.shutdown()


async def test_a_sync_asking_to_look_again_later_is_run_again() -> None:
    seen = asyncio.Event()
    calls = 0

    async def sync(key: str) -> float | None:
        nonlocal calls
        calls += 1
        if calls == 2:
            seen.set()
        return 0.01 if calls == 1 else None

    workers = PodWorkers(sync)
    workers.update("a")
    await asyncio.wait_for(seen.wait(), 5)
    assert calls == 2
    await workers.shutdown()


async def test_a_failing_sync_is_retried_with_back_off() -> None:
    done = asyncio.Event()
    attempts = 0

    async def sync(key: str) -> float | None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise RuntimeError("boom")
        done.set()
        return None

    workers = PodWorkers(sync, retry_base=0.01, retry_max=0.02)
    workers.update("a")
    await asyncio.wait_for(done.wait(), 5)
    assert attempts == 3
    await workers.shutdown()


async def test_forget_cancels_a_pending_look() -> None:
    calls = 0

    async def sync(key: str) -> float | None:
        nonlocal calls
        calls += 1
        return None

    workers = PodWorkers(sync)
    workers.update_after("a", 0.05)
    workers.forget("a")
    await asyncio.sleep(0.1)
    assert calls == 0
    await workers.shutdown()
    workers.update("a")  # closed: ignored
    assert calls == 0 and not workers.busy("a")
