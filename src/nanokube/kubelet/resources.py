"""A container's cgroup settings from its ``resources``, as the kubelet computes them for the CRI.

Kubernetes' ``calculateLinuxResources`` rules: cpu shares come from the cpu request (the limit when only a limit
is set; 2, the minimum, when neither is), ``shares = milliCPU * 1024 / 1000`` within [2, 262144]; the CFS quota
comes from the cpu limit over a 100 ms period (at least 1 ms; none without a limit); the memory limit is
``limits.memory`` in bytes. Requests were already defaulted from limits by the API server, so this only reads.
No I/O: the runtime turns the result into runc's ``linux.resources``.
"""

from __future__ import annotations

from typing import Any

from nanokube.api.quantity import milli_value, value

from .runtime.interface import LinuxResources

CPU_PERIOD_US = 100_000
MIN_SHARES, MAX_SHARES = 2, 262_144
MIN_QUOTA_US = 1_000


def milli_cpu_to_shares(milli_cpu: int) -> int:
    if milli_cpu <= 0:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, milli_cpu * 1024 // 1000))


def milli_cpu_to_quota(milli_cpu: int, period: int = CPU_PERIOD_US) -> int:
    """The CFS quota in microseconds for a cpu limit (0: no limit)."""
    if milli_cpu <= 0:
        return 0
    return max(MIN_QUOTA_US, milli_cpu * period // 1000)


def linux_resources(container: dict[str, Any]) -> LinuxResources:
    """The cgroup limits of one container spec (``resources.requests``/``limits``)."""
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    cpu_request = milli_value(requests["cpu"]) if "cpu" in requests else 0
    cpu_limit = milli_value(limits["cpu"]) if "cpu" in limits else 0
    quota = milli_cpu_to_quota(cpu_limit)
    return LinuxResources(
        cpu_period=CPU_PERIOD_US if quota else 0, cpu_quota=quota,
        cpu_shares=milli_cpu_to_shares(cpu_request or cpu_limit),
        memory_limit_bytes=value(limits["memory"]) if "memory" in limits else 0)
