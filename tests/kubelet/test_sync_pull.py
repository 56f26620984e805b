"""Image pull back-off in the Pod syncer: ErrImagePull, then ImagePullBackOff until the delay has passed, then
another pull; the delay doubles. Driven with a fake clock and a runtime whose pulls fail."""

from __future__ import annotations

from typing import Any

from kubelet_helpers import pod

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.runtime.fake import FakeRuntime
from nanokube.kubelet.runtime.interface import AuthConfig, ImagePullFailure, ImageSpec
from nanokube.kubelet.status import StatusManager
from nanokube.kubelet.sync import PodSyncer, SyncSettings


class NoPulls(FakeRuntime):
    def __init__(self) -> None:
        super().__init__(pod_cidr="10.42.9.0/24")
        self.pulls = 0

    async def pull_image(self, image: ImageSpec, auth: AuthConfig | None = None) -> str:
        self.pulls += 1
        raise ImagePullFailure(f"{image.image}: not found")


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def waiting(status: StatusManager, uid: str) -> dict[str, Any]:
    cached = status.cached(uid) or {}
    result: dict[str, Any] = cached["containerStatuses"][0]["state"]["waiting"]
    return result


async def test_a_failed_pull_backs_off_before_the_next_one() -> None:
    async with InProcessCluster() as cluster:
        await pull_backs_off(StatusManager(cluster.client))


async def pull_backs_off(status: StatusManager) -> None:
    runtime, clock = NoPulls(), Clock()
    syncer = PodSyncer(SyncSettings("n", ("192.0.2.1",)), runtime, status, clock=clock)
    p = pod("p", "n")
    p["metadata"]["uid"] = "u1"
    p["spec"]["containers"][0]["image"] = "example.test/missing:1"
    status.observe(p)
    await syncer.sync(p)
    assert runtime.pulls == 1 and waiting(status, "u1")["reason"] == "ErrImagePull"
    clock.now += 5
    await syncer.sync(p)
    assert runtime.pulls == 1
    assert waiting(status, "u1") == {"reason": "ImagePullBackOff",
                                      "message": 'Back-off pulling image "example.test/missing:1"'}
    clock.now += 6  # 11 s after the failure: past the first 10 s delay
    await syncer.sync(p)
    assert runtime.pulls == 2 and waiting(status, "u1")["reason"] == "ErrImagePull"
    clock.now += 15  # the delay is 20 s now
    await syncer.sync(p)
    assert runtime.pulls == 2 and waiting(status, "u1")["reason"] == "ImagePullBackOff"
