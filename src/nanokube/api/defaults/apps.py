"""apps/v1 defaults: Deployment, ReplicaSet, StatefulSet, DaemonSet (``pkg/apis/apps/v1/defaults.go``).

Deployments roll with 25%/25% and keep 10 revisions; StatefulSets update ``RollingUpdate`` with partition 0 and
retain their claims; DaemonSets roll one pod at a time. ``kubectl rollout status`` refuses other strategies,
so these matter beyond looks. Each pod template also gets the pod-spec defaults.
"""

from __future__ import annotations

from .podspec import JSON, claim_spec, dicts, ensure, pod_template, sub


def deployment(obj: JSON) -> None:
    spec = ensure(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = ensure(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = ensure(strategy, "rollingUpdate")
        for name in ("maxUnavailable", "maxSurge"):
            if rolling.get(name) is None:
                rolling[name] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    pod_template(spec.get("template"))


def replica_set(obj: JSON) -> None:
    spec = ensure(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    pod_template(spec.get("template"))


def stateful_set(obj: JSON) -> None:
    spec = ensure(obj, "spec")
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = ensure(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        if strategy.get("rollingUpdate") is None:
            strategy["rollingUpdate"] = {}
    rolling = sub(strategy, "rollingUpdate")
    if strategy["type"] == "RollingUpdate" and rolling is not None and rolling.get("partition") is None:
        rolling["partition"] = 0
    retention = ensure(spec, "persistentVolumeClaimRetentionPolicy")
    for name in ("whenDeleted", "whenScaled"):
        if not retention.get(name):
            retention[name] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    pod_template(spec.get("template"))
    for claim in dicts(spec.get("volumeClaimTemplates")):
        claim_spec(ensure(claim, "spec"))
        status = ensure(claim, "status")
        if not status.get("phase"):
            status["phase"] = "Pending"


def daemon_set(obj: JSON) -> None:
    spec = ensure(obj, "spec")
    strategy = ensure(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = ensure(strategy, "rollingUpdate")
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = 1
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    pod_template(spec.get("template"))
