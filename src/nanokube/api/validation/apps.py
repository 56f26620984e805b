"""Workload controllers: Deployment, ReplicaSet, StatefulSet, DaemonSet, ReplicationController, ControllerRevision.

The shared rule is the one users meet most: the selector must be non-empty and must select the pod template
(``spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template
`labels```), and the template must restart ``Always``. In apps/v1 selectors are immutable; StatefulSets also
freeze everything but replicas, template, update strategy, ordinals, PVC retention and minReadySeconds.
"""

from __future__ import annotations

from typing import Any

from . import formats
from .field import (
    Errors,
    as_dict,
    as_int,
    child,
    forbidden,
    immutable,
    invalid,
    labels_value,
    nonnegative,
    not_supported,
    required,
)
from .meta import name_is_dns_label, name_is_dns_subdomain, validate_object_meta, validate_object_meta_update
from .podspec import validate_pod_template_spec
from .selectors import is_empty, matches, usable, validate_label_selector


def _template_labels(template: Any) -> dict[str, Any]:
    return as_dict(as_dict(as_dict(template).get("metadata")).get("labels"))


def _selector_mismatch(selector: Any, template: Any, path: str) -> Errors:
    """A nil selector selects nothing; an empty one everything (``LabelSelectorAsSelector``)."""
    labels = _template_labels(template)
    selects = selector is not None and matches(selector, labels)
    if selector is not None and is_empty(selector):
        return []
    if not selects:
        return [invalid(child(path, "metadata", "labels"), labels_value(labels),
                        "`selector` does not match template `labels`")]
    return []


def _restart_always(template: Any, path: str, owner: str) -> Errors:
    spec = as_dict(as_dict(template).get("spec"))
    errs: Errors = []
    policy = spec.get("restartPolicy")
    if policy != "Always":
        errs.append(not_supported(child(path, "spec", "restartPolicy"), policy or "", ["Always"]))
    if spec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden(child(path, "spec", "activeDeadlineSeconds"),
                              f"activeDeadlineSeconds in {owner} is not Supported"))
    return errs


def _selector(spec: dict[str, Any], kind: str) -> Errors:
    """Required, well formed and not empty."""
    selector = spec.get("selector")
    if selector is None:
        return [required("spec.selector")]
    errs = validate_label_selector(selector, "spec.selector")
    if is_empty(selector):
        errs.append(invalid("spec.selector", selector, f"empty selector is invalid for {kind}"))
    return errs


def _replica_set_spec(spec: dict[str, Any], kind: str) -> Errors:
    """``ValidateReplicaSetSpec``'s body, shared with Deployments."""
    errs = nonnegative("spec.replicas", spec.get("replicas"))
    errs.extend(_selector(spec, kind))
    selector = spec.get("selector")
    if selector is not None and not usable(selector):
        return [*errs, invalid("spec.selector", selector, "invalid label selector")]
    template = as_dict(spec.get("template"))
    errs.extend(_selector_mismatch(selector, template, "spec.template"))
    errs.extend(validate_pod_template_spec(template, "spec.template"))
    return errs + _restart_always(template, "spec.template", "ReplicaSet")


# -- Deployment ----------------------------------------------------------------------------------------------
def _percent(value: Any) -> int | None:
    if isinstance(value, str) and not formats.is_valid_percent(value):
        return int(value[:-1])
    return None


def _int_or_percent(value: Any, path: str) -> Errors:
    if isinstance(value, str):
        return [invalid(path, value, m) for m in formats.is_valid_percent(value)]
    return nonnegative(path, value)


def _amount(value: Any) -> int:
    pct = _percent(value)
    if pct is not None:
        return pct
    return as_int(value) or 0


def _not_over_100(value: Any, path: str) -> Errors:
    pct = _percent(value)
    return [invalid(path, value, "must not be greater than 100%")] if pct is not None and pct > 100 else []


def _deployment_strategy(strategy: dict[str, Any]) -> Errors:
    path, kind = "spec.strategy", strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            return [forbidden(child(path, "rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if kind != "RollingUpdate":
        return [not_supported(path, strategy, ["Recreate", "RollingUpdate"])]
    if not isinstance(rolling, dict):
        return [required(child(path, "rollingUpdate"), "this should be defaulted and never be nil")]
    rpath = child(path, "rollingUpdate")
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    errs = _int_or_percent(unavailable, child(rpath, "maxUnavailable"))
    errs.extend(_int_or_percent(surge, child(rpath, "maxSurge")))
    if _amount(unavailable) == 0 and _amount(surge) == 0:
        errs.append(invalid(child(rpath, "maxUnavailable"), unavailable, "may not be 0 when `maxSurge` is 0"))
    return errs + _not_over_100(unavailable, child(rpath, "maxUnavailable"))


def deployment_create(obj: dict[str, Any]) -> Errors:
    return validate_object_meta(obj, True, name_is_dns_subdomain) + _deployment_spec(as_dict(obj.get("spec")))


def _deployment_spec(spec: dict[str, Any]) -> Errors:
    errs = _replica_set_spec(spec, "deployment")
    errs.extend(_deployment_strategy(as_dict(spec.get("strategy"))))
    errs.extend(nonnegative("spec.minReadySeconds", spec.get("minReadySeconds")))
    errs.extend(nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit")))
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        errs.extend(nonnegative("spec.progressDeadlineSeconds", deadline))
        if (as_int(deadline) or 0) <= (as_int(spec.get("minReadySeconds")) or 0):
            errs.append(invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    return errs


def _selector_immutable(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    new_sel, old_sel = as_dict(new.get("spec")).get("selector"), as_dict(old.get("spec")).get("selector")
    return immutable("spec.selector", new_sel, old_sel)


def deployment_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = validate_object_meta_update(new, old) + _deployment_spec(as_dict(new.get("spec")))
    return errs + _selector_immutable(new, old)


# -- ReplicaSet, ReplicationController -------------------------------------------------------------------------
def replicaset_create(obj: dict[str, Any]) -> Errors:
    spec = as_dict(obj.get("spec"))
    errs = validate_object_meta(obj, True, name_is_dns_subdomain)
    errs.extend(nonnegative("spec.minReadySeconds", spec.get("minReadySeconds")))
    return errs + _replica_set_spec(spec, "deployment")


def replicaset_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    spec = as_dict(new.get("spec"))
    errs = validate_object_meta_update(new, old) + nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    return errs + _replica_set_spec(spec, "deployment") + _selector_immutable(new, old)


def replicationcontroller_create(obj: dict[str, Any]) -> Errors:
    return validate_object_meta(obj, True, name_is_dns_subdomain) + _rc_spec(as_dict(obj.get("spec")))


def _rc_spec(spec: dict[str, Any]) -> Errors:
    errs = nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    selector = as_dict(spec.get("selector"))
    if not selector:
        errs.append(required("spec.selector"))
    errs.extend(nonnegative("spec.replicas", spec.get("replicas")))
    template = spec.get("template")
    if template is None:
        return [*errs, required("spec.template")]
    labels = _template_labels(template)
    if selector and any(labels.get(k) != v for k, v in selector.items()):
        errs.append(invalid("spec.template.metadata.labels", labels_value(labels),
                            "`selector` does not match template `labels`"))
    errs.extend(validate_pod_template_spec(template, "spec.template"))
    return errs + _restart_always(template, "spec.template", "ReplicationController")


def replicationcontroller_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return validate_object_meta_update(new, old) + _rc_spec(as_dict(new.get("spec")))


# -- StatefulSet ---------------------------------------------------------------------------------------------
def _statefulset_spec(spec: dict[str, Any]) -> Errors:
    errs: Errors = []
    policy = spec.get("podManagementPolicy")
    if not policy:
        errs.append(required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        errs.append(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    errs.extend(_statefulset_strategy(as_dict(spec.get("updateStrategy"))))
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        for when in ("whenDeleted", "whenScaled"):
            if retention.get(when) not in ("Retain", "Delete"):
                errs.append(not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{when}",
                                          retention.get(when) or "", ["Retain", "Delete"]))
    errs.extend(nonnegative("spec.replicas", spec.get("replicas")))
    errs.extend(nonnegative("spec.minReadySeconds", spec.get("minReadySeconds")))
    errs.extend(nonnegative("spec.ordinals.start", as_dict(spec.get("ordinals")).get("start")))
    errs.extend(_selector(spec, "statefulset"))
    selector, template = spec.get("selector"), as_dict(spec.get("template"))
    if selector is not None and not usable(selector):
        errs.append(invalid("spec.selector", selector, ""))
    else:
        errs.extend(_selector_mismatch(selector, template, "spec.template"))
    return errs + _restart_always(template, "spec.template", "StatefulSet")


def _statefulset_strategy(strategy: dict[str, Any]) -> Errors:
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if not kind:
        return [required("spec.updateStrategy")]
    if kind == "OnDelete":
        if rolling is not None:
            return [invalid("spec.updateStrategy.rollingUpdate", rolling, "only allowed for updateStrategy "
                            "'RollingUpdate'")]
        return []
    if kind != "RollingUpdate":
        return [invalid("spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'")]
    rolling = as_dict(rolling)
    errs = nonnegative("spec.updateStrategy.rollingUpdate.partition", rolling.get("partition"))
    unavailable = rolling.get("maxUnavailable")
    if unavailable is not None:
        upath = "spec.updateStrategy.rollingUpdate.maxUnavailable"
        errs.extend(_int_or_percent(unavailable, upath))
        if _amount(unavailable) == 0:
            errs.append(invalid(upath, unavailable, "cannot be 0"))
        errs.extend(_not_over_100(unavailable, upath))
    return errs


_STS_MUTABLE = ("replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
                "persistentVolumeClaimRetentionPolicy")


def statefulset_create(obj: dict[str, Any]) -> Errors:
    return validate_object_meta(obj, True, name_is_dns_label) + _statefulset_spec(as_dict(obj.get("spec")))


def statefulset_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    new_spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    errs = validate_object_meta_update(new, old) + _statefulset_spec(new_spec)
    frozen_new = {k: v for k, v in new_spec.items() if k not in _STS_MUTABLE}
    frozen_old = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
    if frozen_new != frozen_old:
        errs.append(forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                              "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                              "'minReadySeconds' are forbidden"))
    return errs


# -- DaemonSet -----------------------------------------------------------------------------------------------
def _daemonset_spec(spec: dict[str, Any]) -> Errors:
    selector, template = spec.get("selector"), as_dict(spec.get("template"))
    errs = validate_label_selector(selector, "spec.selector")
    if selector is None or usable(selector):
        errs.extend(_selector_mismatch(selector, template, "spec.template"))
    if selector is not None and is_empty(selector):
        errs.append(invalid("spec.selector", selector, "empty selector is invalid for daemonset"))
    errs.extend(validate_pod_template_spec(template, "spec.template"))
    errs.extend(_restart_always(template, "spec.template", "DaemonSet"))
    errs.extend(nonnegative("spec.minReadySeconds", spec.get("minReadySeconds")))
    errs.extend(_daemonset_strategy(as_dict(spec.get("updateStrategy"))))
    return errs + nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))


def _daemonset_strategy(strategy: dict[str, Any]) -> Errors:
    kind, path = strategy.get("type"), "spec.updateStrategy"
    if kind == "OnDelete":
        return []
    if kind != "RollingUpdate":
        return [not_supported(path, strategy, ["RollingUpdate", "OnDelete"])]
    rolling = strategy.get("rollingUpdate")
    if not isinstance(rolling, dict):
        return [required(child(path, "rollingUpdate"))]
    rpath = child(path, "rollingUpdate")
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    errs = _int_or_percent(unavailable, child(rpath, "maxUnavailable"))
    errs.extend(_int_or_percent(surge, child(rpath, "maxSurge")))
    errs.extend(_not_over_100(unavailable, child(rpath, "maxUnavailable")))
    errs.extend(_not_over_100(surge, child(rpath, "maxSurge")))
    has_unavailable, has_surge = _amount(unavailable) != 0, _amount(surge) != 0
    if has_unavailable and has_surge:
        errs.append(invalid(child(rpath, "maxSurge"), surge, "may not be set when maxUnavailable is non-zero"))
    elif not has_unavailable and not has_surge:
        errs.append(required(child(rpath, "maxUnavailable"), "cannot be 0 when maxSurge is 0"))
    return errs


def daemonset_create(obj: dict[str, Any]) -> Errors:
    return validate_object_meta(obj, True, name_is_dns_subdomain) + _daemonset_spec(as_dict(obj.get("spec")))


def daemonset_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = validate_object_meta_update(new, old) + _daemonset_spec(as_dict(new.get("spec")))
    return errs + _selector_immutable(new, old)


# -- ControllerRevision --------------------------------------------------------------------------------------
def controllerrevision_create(obj: dict[str, Any]) -> Errors:
    errs = validate_object_meta(obj, True, name_is_dns_subdomain)
    if obj.get("data") is None:
        errs.append(required("data", "data is mandatory"))
    return errs + nonnegative("revision", obj.get("revision"))


def controllerrevision_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = validate_object_meta_update(new, old) + controllerrevision_create(new)
    return errs + immutable("data", new.get("data"), old.get("data"))
