from __future__ import annotations

from nanokube.kubelet.resources import linux_resources, milli_cpu_to_quota, milli_cpu_to_shares
from nanokube.kubelet.runtime.interface import LinuxResources


def test_shares_and_quota_follow_the_kubelets_conversions() -> None:
    assert [milli_cpu_to_shares(m) for m in (0, 1, 100, 250, 1000, 2_000_000)] == [2, 2, 102, 256, 1024, 262144]
    assert [milli_cpu_to_quota(m) for m in (0, 5, 200, 1500)] == [0, 1000, 20000, 150000]


def test_a_containers_requests_and_limits_become_cgroup_settings() -> None:
    spec = {"resources": {"requests": {"cpu": "250m", "memory": "32Mi"}, "limits": {"cpu": "0.5", "memory": "48Mi"}}}
    assert linux_resources(spec) == LinuxResources(cpu_period=100000, cpu_quota=50000, cpu_shares=256,
                                                   memory_limit_bytes=48 * 1024 * 1024)
    # A limit alone stands for the request too; no resources at all is the minimum share and no limits.
    assert linux_resources({"resources": {"limits": {"cpu": "1"}}}).cpu_shares == 1024
    assert linux_resources({"name": "c"}) == LinuxResources(cpu_shares=2)
    assert linux_resources({"resources": {"limits": {"memory": "1G"}}}).memory_limit_bytes == 10**9
