"""Pods: create validation and the famous update rule (``ValidatePodCreate``/``ValidatePodUpdate``).

A running pod's spec is frozen except container images, ``activeDeadlineSeconds`` (only shortened),
tolerations (only added) and scheduling gates (only removed). Anything else is rejected with Kubernetes'
message ``pod updates may not change fields other than ...`` followed by a diff of what changed.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .containers import validate_image_whitespace
from .field import Errors, as_dict, as_int, as_list, as_str, child, forbidden, index, invalid, required
from .meta import name_is_dns_subdomain, validate_object_meta, validate_object_meta_update
from .podspec import MAX_INT32, validate_pod_spec, validate_tolerations

UPDATABLE_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)


def _metadata_and_spec(pod: dict[str, Any]) -> Errors:
    errs = validate_object_meta(pod, True, name_is_dns_subdomain)
    annotations = as_dict(as_dict(pod.get("metadata")).get("annotations"))
    spec = as_dict(pod.get("spec"))
    if "kubernetes.io/config.mirror" in annotations and not spec.get("nodeName"):
        errs.append(invalid("metadata.annotations[kubernetes.io/config.mirror]",
                            annotations["kubernetes.io/config.mirror"],
                            "must set spec.nodeName if mirror pod annotation is set"))
    errs.extend(validate_pod_spec(spec, "spec", is_pod=True))
    if not spec.get("serviceAccountName"):
        for vi, volume in enumerate(as_list(spec.get("volumes"))):
            projected = as_dict(as_dict(volume).get("projected"))
            for si, source in enumerate(as_list(projected.get("sources"))):
                if as_dict(source).get("serviceAccountToken") is not None:
                    errs.append(forbidden(f"spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken",
                                          "must not be specified when serviceAccountName is not set"))
    errs.extend(validate_image_whitespace(spec.get("containers"), "spec.containers"))
    errs.extend(validate_image_whitespace(spec.get("initContainers"), "spec.initContainers"))
    return errs


def create(pod: dict[str, Any]) -> Errors:
    errs = _metadata_and_spec(pod)
    spec = as_dict(pod.get("spec"))
    if as_list(spec.get("ephemeralContainers")):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if spec.get("nodeName") and as_list(spec.get("schedulingGates")):
        errs.append(forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"))
    return errs


def update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = validate_object_meta_update(new, old)
    errs.extend(_metadata_and_spec(new))
    new_spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    for field in ("containers", "initContainers"):
        container_errs, stop = _container_updates(new_spec.get(field), old_spec.get(field), child("spec", field))
        errs.extend(container_errs)
        if stop:
            return errs
    deadline_errs, stop = _deadline_update(new_spec.get("activeDeadlineSeconds"),
                                           old_spec.get("activeDeadlineSeconds"))
    errs.extend(deadline_errs)
    if stop:
        return errs
    errs.extend(_only_added_tolerations(new_spec.get("tolerations"), old_spec.get("tolerations")))
    errs.extend(_only_deleted_gates(new_spec.get("schedulingGates"), old_spec.get("schedulingGates")))
    if new_spec == old_spec:
        return errs
    munged = _munge(new_spec, old_spec)
    if munged != old_spec:
        detail = "pod updates may not change fields other than " + ",".join(UPDATABLE_FIELDS) + "\n"
        errs.append(forbidden("spec", detail + spec_diff(old_spec, munged)))
    return errs


def _container_updates(new: Any, old: Any, path: str) -> tuple[Errors, bool]:
    new_list, old_list = as_list(new), as_list(old)
    if len(new_list) != len(old_list):
        return [forbidden(path, "pod updates may not add or remove containers")], True
    errs: Errors = []
    for i, ctr in enumerate(new_list):
        image = as_str(as_dict(ctr).get("image"))
        if not image:
            errs.append(required(child(index(path, i), "image")))
        if image != image.strip():
            errs.append(invalid(child(index(path, i), "image"), image, "must not have leading or trailing whitespace"))
    return errs, False


def _deadline_update(new: Any, old: Any) -> tuple[Errors, bool]:
    path = "spec.activeDeadlineSeconds"
    if new is not None:
        value = as_int(new) or 0
        if not 0 <= value <= MAX_INT32:
            return [invalid(path, value, f"must be between 0 and {MAX_INT32}, inclusive")], True
        if old is not None and (as_int(old) or 0) < value:
            return [invalid(path, value, "must be less than or equal to previous value")], True
    elif old is not None:
        return [invalid(path, None, "must not update from a positive integer to nil value")], False
    return [], False


def _only_added_tolerations(new: Any, old: Any) -> Errors:
    path = "spec.tolerations"
    new_list = [as_dict(t) for t in as_list(new)]
    for tol in (as_dict(t) for t in as_list(old)):
        bare = {k: v for k, v in tol.items() if k != "tolerationSeconds"}
        if not any({k: v for k, v in n.items() if k != "tolerationSeconds"} == bare for n in new_list):
            return [forbidden(path, "existing toleration can not be modified except its tolerationSeconds")]
    return validate_tolerations(new_list, path)


def _only_deleted_gates(new: Any, old: Any) -> Errors:
    old_names = {as_str(as_dict(g).get("name")) for g in as_list(old)}
    errs: Errors = []
    for i, gate in enumerate(as_list(new)):
        name = as_str(as_dict(gate).get("name"))
        if name not in old_names:
            errs.append(forbidden(f"spec.schedulingGates[{i}].name",
                                  f"only deletion is allowed, but found new scheduling gate '{name}'"))
    return errs


def _munge(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """The new spec with every field a pod update may change put back to its old value."""
    munged = copy.deepcopy(new)
    for field in ("containers", "initContainers"):
        old_containers = as_list(old.get(field))
        for i, ctr in enumerate(as_list(munged.get(field))):
            if isinstance(ctr, dict) and i < len(old_containers):
                ctr["image"] = as_dict(old_containers[i]).get("image")
    for field in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        if field in old:
            munged[field] = copy.deepcopy(old[field])
        else:
            munged.pop(field, None)
    old_grace = as_int(old.get("terminationGracePeriodSeconds"))
    if old_grace is not None and old_grace < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    return munged


def spec_diff(old: dict[str, Any], new: dict[str, Any], type_name: str = "core.PodSpec") -> str:
    """A short, readable diff of top-level spec fields (Kubernetes prints a ``cmp.Diff`` here)."""
    lines = [f"  {type_name}{{"]
    for name in sorted(set(old) | set(new)):
        if old.get(name) == new.get(name):
            continue
        if name in old:
            lines.append(f"- \t{name}: {json.dumps(old[name], separators=(',', ':'))},")
        if name in new:
            lines.append(f"+ \t{name}: {json.dumps(new[name], separators=(',', ':'))},")
    lines.append("  }")
    return "\n".join(lines) + "\n"
