"""Per-kind write rules. ``strategy_for`` picks the strategy of a resource."""

from __future__ import annotations

from nanokube.api.registry import Resource

from .base import Strategy, StrategyOptions
from .pods import PodStrategy
from .workloads import DaemonSetStrategy

_SPECIAL: dict[tuple[str, str], type[Strategy]] = {
    ("", "pods"): PodStrategy,
    ("apps", "daemonsets"): DaemonSetStrategy,
}


def strategy_for(resource: Resource, options: StrategyOptions | None = None) -> Strategy:
    cls = _SPECIAL.get((resource.group, resource.plural), Strategy)
    return cls(resource, options)


__all__ = ["Strategy", "StrategyOptions", "strategy_for"]
