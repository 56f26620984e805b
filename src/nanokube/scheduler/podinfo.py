"""``PodInfo``: a pod digested once into what scheduling reads — requests, ports, priority, affinity terms.

Built when a pod enters the scheduler (queue or snapshot) and reused by every cycle and every plugin, so the
quantity parsing and selector compiling happen once per pod version, not once per node or per attempt. Affinity
terms follow kube's ``AffinityTerm``: an empty namespace list with no namespace selector means the pod's own
namespace; a missing label selector matches nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nanokube.api.labels import Selector, selector_from_label_selector

from .resources import host_ports, nonzero_cpu_memory, pod_requests

JSON = dict[str, Any]
NamespaceLabels = Callable[[str], Mapping[str, str] | None]


@dataclass(frozen=True, slots=True, eq=False)
class AffinityTerm:
    namespaces: frozenset[str]
    namespace_selector: Selector | None  # None: only ``namespaces``
    selector: Selector
    topology_key: str
    weight: int = 1

    def matches(self, pod: PodInfo, namespace_labels: NamespaceLabels | None = None) -> bool:
        """Whether ``pod`` is one of the pods this term is about."""
        if not self._namespace_ok(pod.namespace, namespace_labels):
            return False
        return self.selector.matches(pod.labels)

    def _namespace_ok(self, namespace: str, namespace_labels: NamespaceLabels | None) -> bool:
        if namespace in self.namespaces:
            return True
        if self.namespace_selector is None:
            return False
        if self.namespace_selector.empty:
            return True
        labels = namespace_labels(namespace) if namespace_labels is not None else None
        return labels is not None and self.namespace_selector.matches(labels)

    def signature(self) -> tuple[Any, ...]:
        """A hashable identity of what the term selects (for shared per-node counters)."""
        ns_sel = None if self.namespace_selector is None else repr(self.namespace_selector)
        return (tuple(sorted(self.namespaces)), ns_sel, repr(self.selector))


def _selector(raw: Any) -> Selector:
    try:
        return selector_from_label_selector(raw if isinstance(raw, dict) else None)
    except ValueError:
        return Selector.nothing()


def affinity_term(namespace: str, raw: JSON, weight: int = 1) -> AffinityTerm:
    names = [n for n in (raw.get("namespaces") or []) if isinstance(n, str)]
    ns_raw = raw.get("namespaceSelector")
    ns_selector = None if ns_raw is None else _selector(ns_raw)
    if not names and ns_selector is None:
        names = [namespace]
    return AffinityTerm(frozenset(names), ns_selector, _selector(raw.get("labelSelector")),
                        str(raw.get("topologyKey") or ""), weight)


def _terms(namespace: str, section: Any, key: str) -> tuple[AffinityTerm, ...]:
    if not isinstance(section, dict):
        return ()
    return tuple(affinity_term(namespace, t) for t in section.get(key) or [] if isinstance(t, dict))


def _weighted(namespace: str, section: Any) -> tuple[AffinityTerm, ...]:
    if not isinstance(section, dict):
        return ()
    out = []
    for item in section.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        if isinstance(item, dict) and isinstance(item.get("podAffinityTerm"), dict):
            out.append(affinity_term(namespace, item["podAffinityTerm"], int(item.get("weight") or 0)))
    return tuple(out)


_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


@dataclass(slots=True, eq=False)
class PodInfo:
    pod: JSON
    key: str  # namespace/name
    uid: str
    namespace: str
    name: str
    labels: dict[str, str]
    priority: int
    requests: dict[str, int]
    nonzero_cpu: int
    nonzero_mem: int
    ports: tuple[tuple[str, str, int], ...]
    terminating: bool
    required_affinity: tuple[AffinityTerm, ...] = ()
    required_anti_affinity: tuple[AffinityTerm, ...] = ()
    preferred_affinity: tuple[AffinityTerm, ...] = ()
    preferred_anti_affinity: tuple[AffinityTerm, ...] = ()
    fit_cache: tuple[Any, ...] | None = None  # the request vector for a table layout (see noderesources)
    policy: str = ""  # preemptionPolicy resolved from the PriorityClass when the spec has none

    @classmethod
    def of(cls, pod: JSON, priority: int | None = None) -> PodInfo:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        namespace = meta.get("namespace") or ""
        requests = pod_requests(spec)
        nonzero_cpu, nonzero_mem = nonzero_cpu_memory(spec, requests)
        if priority is None:
            priority = spec.get("priority") if isinstance(spec.get("priority"), int) else 0
        info = cls(pod=pod, key=f"{namespace}/{meta.get('name', '')}", uid=meta.get("uid") or "",
                   namespace=namespace, name=meta.get("name") or "", labels=dict(meta.get("labels") or {}),
                   priority=int(priority or 0), requests=requests, nonzero_cpu=nonzero_cpu,
                   nonzero_mem=nonzero_mem, ports=host_ports(spec), terminating=bool(meta.get("deletionTimestamp")))
        affinity = spec.get("affinity")
        if isinstance(affinity, dict):
            pod_aff, anti = affinity.get("podAffinity"), affinity.get("podAntiAffinity")
            info.required_affinity = _terms(namespace, pod_aff, _REQUIRED)
            info.required_anti_affinity = _terms(namespace, anti, _REQUIRED)
            info.preferred_affinity = _weighted(namespace, pod_aff)
            info.preferred_anti_affinity = _weighted(namespace, anti)
        return info

    @property
    def spec(self) -> JSON:
        spec: JSON = self.pod.get("spec") or {}
        return spec

    @property
    def node_name(self) -> str:
        return str(self.spec.get("nodeName") or "")

    @property
    def nominated_node(self) -> str:
        return str((self.pod.get("status") or {}).get("nominatedNodeName") or "")

    @property
    def scheduler_name(self) -> str:
        return str(self.spec.get("schedulerName") or "default-scheduler")

    @property
    def preemption_policy(self) -> str:
        return str(self.spec.get("preemptionPolicy") or self.policy or "PreemptLowerPriority")

    @property
    def start_time(self) -> str:
        status = self.pod.get("status") or {}
        return str(status.get("startTime") or (self.pod.get("metadata") or {}).get("creationTimestamp") or "")

    @property
    def has_pod_affinity(self) -> bool:
        return bool(self.required_affinity or self.required_anti_affinity or self.preferred_affinity
                    or self.preferred_anti_affinity)

    @property
    def has_required_anti_affinity(self) -> bool:
        return bool(self.required_anti_affinity)

    @property
    def best_effort_for_scoring(self) -> bool:
        """No cpu or memory request at all (BalancedAllocation leaves such pods unscored)."""
        return not self.requests.get("cpu") and not self.requests.get("memory")
