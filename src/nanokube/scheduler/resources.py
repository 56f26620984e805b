"""Pod resource requests as the scheduler counts them, and host ports a pod claims.

Follows kube's ``resource.PodRequests`` (component-helpers): regular containers add up; an init container needs
its own request plus the sidecars (``restartPolicy: Always`` init containers) started before it; sidecars also
run beside the regular containers; the pod needs the larger of the two. Pod-level ``spec.resources.requests``
(cpu, memory, hugepages) replace the container totals; ``spec.overhead`` is added on top. CPU is counted in
millicores, everything else in whole units, rounded up as Go's ``MilliValue``/``Value`` do.

``nonzero_cpu_memory`` is what scoring uses: a container that sets no cpu (memory) request counts 100m (200Mi),
so that best-effort pods still spread out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from nanokube.api.quantity import milli_value, value

JSON = dict[str, Any]
Requests = dict[str, int]

DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024
_NATIVE = frozenset(("cpu", "memory", "ephemeral-storage"))
_POD_LEVEL = frozenset(("cpu", "memory"))


def is_scalar(name: str) -> bool:
    """Extended (``example.com/gpu``), prefixed native and hugepages resources, which the scheduler counts."""
    return name.startswith("hugepages-") or "/" in name


def counted(name: str) -> bool:
    return name in _NATIVE or is_scalar(name)


@lru_cache(maxsize=8192)
def _amount(name: str, text: str) -> int:
    return milli_value(text) if name == "cpu" else value(text)


def amount(name: str, quantity: Any) -> int:
    """One quantity in scheduler units: millicores for cpu, whole units otherwise; unparsable counts 0."""
    try:
        return _amount(name, str(quantity))
    except (ValueError, ArithmeticError):
        return 0


def resource_list(raw: Mapping[str, Any] | None) -> Requests:
    """The counted resources of a ResourceList (a node's allocatable, a container's requests)."""
    if not raw:
        return {}
    return {name: amount(name, q) for name, q in raw.items() if counted(name)}


def _add(into: Requests, more: Mapping[str, int]) -> None:
    for name, n in more.items():
        into[name] = into.get(name, 0) + n


def _maximum(into: Requests, other: Mapping[str, int]) -> None:
    for name, n in other.items():
        if name not in into or n > into[name]:
            into[name] = n


def _container_requests(container: JSON, non_missing: Mapping[str, int] | None) -> Requests:
    resources = container.get("resources") or {}
    raw = resources.get("requests") or {}
    out = resource_list(raw)
    if non_missing:
        for name, n in non_missing.items():
            if name not in raw:
                out[name] = out.get(name, 0) + n
    return out


def _dicts(items: Any) -> Iterable[JSON]:
    return (i for i in (items or []) if isinstance(i, dict))


def pod_level_requests_set(spec: JSON) -> bool:
    requests = (spec.get("resources") or {}).get("requests") or {}
    return any(_pod_level_supported(name) for name in requests)


def _pod_level_supported(name: str) -> bool:
    return name in _POD_LEVEL or name.startswith("hugepages-")


def pod_requests(spec: JSON, non_missing: Mapping[str, int] | None = None) -> Requests:
    """Total requests of a pod spec, as kube's ``PodRequests`` with the given missing-request defaults."""
    result: Requests = {}
    for container in _dicts(spec.get("containers")):
        _add(result, _container_requests(container, non_missing))
    sidecars: Requests = {}
    init_peak: Requests = {}
    for container in _dicts(spec.get("initContainers")):
        own = _container_requests(container, non_missing)
        if container.get("restartPolicy") == "Always":
            _add(result, own)
            _add(sidecars, own)
            need = dict(sidecars)
        else:
            need = dict(own)
            _add(need, sidecars)
        _maximum(init_peak, need)
    _maximum(result, init_peak)
    pod_level = (spec.get("resources") or {}).get("requests") or {}
    for name, q in pod_level.items():
        if _pod_level_supported(name):
            result[name] = amount(name, q)
    _add(result, resource_list(spec.get("overhead")))
    return result


def nonzero_cpu_memory(spec: JSON, requests: Mapping[str, int]) -> tuple[int, int]:
    """(cpu millicores, memory bytes) for scoring: unset container requests count 100m and 200Mi."""
    if not pod_level_requests_set(spec):
        defaults = {"cpu": DEFAULT_MILLI_CPU, "memory": DEFAULT_MEMORY}
    else:
        defaults = {name: n for name, n in (("cpu", DEFAULT_MILLI_CPU), ("memory", DEFAULT_MEMORY))
                    if name not in requests}
    counted_requests = pod_requests(spec, defaults) if defaults else requests
    return counted_requests.get("cpu", 0), counted_requests.get("memory", 0)


def host_ports(spec: JSON) -> tuple[tuple[str, str, int], ...]:
    """(hostIP, protocol, hostPort) of every port with a hostPort, in containers and sidecars."""
    out: list[tuple[str, str, int]] = []
    containers = list(_dicts(spec.get("containers")))
    containers += [c for c in _dicts(spec.get("initContainers")) if c.get("restartPolicy") == "Always"]
    for container in containers:
        for port in _dicts(container.get("ports")):
            number = port.get("hostPort") or 0
            if isinstance(number, int) and number > 0:
                out.append((port.get("hostIP") or "0.0.0.0", port.get("protocol") or "TCP", number))
    return tuple(out)


def ports_conflict(wanted: Iterable[tuple[str, str, int]], used: Mapping[tuple[str, str, int], int]) -> bool:
    """kube's HostPortInfo.CheckConflict: the same protocol/port on the same IP, or on 0.0.0.0 either side."""
    for ip, protocol, port in wanted:
        if ip == "0.0.0.0":
            if any(p == port and proto == protocol for (_, proto, p) in used):
                return True
        elif (ip, protocol, port) in used or ("0.0.0.0", protocol, port) in used:
            return True
    return False
