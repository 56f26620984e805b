"""Per-kind write rules. ``strategy_for`` picks the strategy of a resource."""

from __future__ import annotations

from nanokube.api.registry import Resource

from .base import Strategy
from .pods import PodStrategy

_SPECIAL: dict[tuple[str, str], type[Strategy]] = {
    ("", "pods"): PodStrategy,
}


def strategy_for(resource: Resource) -> Strategy:
    cls = _SPECIAL.get((resource.group, resource.plural), Strategy)
    return cls(resource)


__all__ = ["Strategy", "strategy_for"]
