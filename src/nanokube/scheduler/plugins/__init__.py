"""The in-tree plugins and kube's default profile built from them.

Order and weights are kube 1.37's default ``MultiPoint`` set: filters NodeUnschedulable, NodeName,
TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, VolumeBinding, PodTopologySpread, InterPodAffinity;
PostFilter DynamicResources then DefaultPreemption; scores TaintToleration 3, NodeAffinity 2, NodeResourcesFit 1,
PodTopologySpread 2, InterPodAffinity 2, NodeResourcesBalancedAllocation 1; DefaultBinder.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ..framework import (
    BindPlugin,
    FilterPlugin,
    PostFilterPlugin,
    PreBindPlugin,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
)
from ..handle import Handle
from ..runtime import Framework, Profile
from .basic import NodeName, NodePorts, NodeUnschedulable
from .binder import DefaultBinder, NoClaims
from .interpodaffinity import InterPodAffinity
from .nodeaffinity import NodeAffinity
from .noderesources import LEAST_ALLOCATED, BalancedAllocation, NodeResourcesFit
from .preemption import DefaultPreemption, Submit
from .taints import TaintToleration
from .topologyspread import PodTopologySpread
from .volumebinding import VolumeBinding

DEFAULT_WEIGHTS = {"TaintToleration": 3, "NodeAffinity": 2, "NodeResourcesFit": 1, "PodTopologySpread": 2,
                   "InterPodAffinity": 2, "NodeResourcesBalancedAllocation": 1}


@dataclass
class ProfileOptions:
    scoring_strategy: str = LEAST_ALLOCATED  # or MostAllocated
    resource_weights: dict[str, int] = field(default_factory=lambda: {"cpu": 1, "memory": 1})
    weights: dict[str, int] = field(default_factory=dict)  # overrides of DEFAULT_WEIGHTS
    percentage_of_nodes_to_score: int = 0
    preemption: bool = True
    claims_note: bool = True  # the DynamicResources "no new claims to deallocate" PostFilter message
    system_default_spread: bool = True
    volume_bind_timeout: float = 600.0


def default_profile(handle: Handle, options: ProfileOptions, framework: Callable[[], Framework], *,
                    submit: Submit | None = None, rng: random.Random | None = None) -> Profile:
    fit = NodeResourcesFit(options.scoring_strategy, options.resource_weights)
    taints = TaintToleration()
    affinity = NodeAffinity()
    ports = NodePorts()
    volumes = VolumeBinding(handle, bind_timeout=options.volume_bind_timeout)
    spread = PodTopologySpread(handle, system_defaults=options.system_default_spread)
    pod_affinity = InterPodAffinity()
    balanced = BalancedAllocation()
    post_filter: list[PostFilterPlugin] = []
    if options.claims_note:
        post_filter.append(NoClaims())
    if options.preemption:
        post_filter.append(DefaultPreemption(framework, handle, submit=submit, rng=rng))
    pre_filter: list[PreFilterPlugin] = [affinity, ports, fit, volumes, spread, pod_affinity]
    filters: list[FilterPlugin] = [NodeUnschedulable(), NodeName(), taints, affinity, ports, fit, volumes, spread,
                                   pod_affinity]
    pre_score: list[PreScorePlugin] = [taints, affinity, spread, pod_affinity, balanced]
    scores: list[ScorePlugin] = [taints, affinity, fit, spread, pod_affinity, balanced]
    pre_bind: list[PreBindPlugin] = [volumes]
    bind: list[BindPlugin] = [DefaultBinder(handle.client)]
    return Profile(pre_filter=pre_filter, filter=filters, post_filter=post_filter, pre_score=pre_score,
                   score=scores, pre_bind=pre_bind, bind=bind, weights={**DEFAULT_WEIGHTS, **options.weights},
                   percentage_of_nodes_to_score=options.percentage_of_nodes_to_score)


__all__ = ["DEFAULT_WEIGHTS", "ProfileOptions", "default_profile"]
