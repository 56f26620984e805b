"""Storage kinds: PersistentVolumeClaim, PersistentVolume, StorageClass.

A claim needs access modes and a positive ``resources.requests.storage``; after creation its spec is frozen
(``spec is immutable after creation except resources.requests and volumeAttributesClassName for bound
claims``), except that a bound claim may grow and the binder may fill ``volumeName`` once. A volume needs
capacity, access modes and exactly one source. StorageClass parameters and provisioner never change.
"""

from __future__ import annotations

import copy
from typing import Any

from . import formats, quantities
from .field import (
    Errors,
    as_dict,
    as_list,
    as_str,
    forbidden,
    immutable,
    invalid,
    not_supported,
    required,
)
from .meta import name_is_dns_subdomain, validate_object_meta, validate_object_meta_update
from .pods import spec_diff
from .selectors import validate_label_selector
from .volumes import validate_volumes

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
VOLUME_MODES = ("Block", "Filesystem")


def _access_modes(modes: Any, path: str) -> Errors:
    items = as_list(modes)
    if not items:
        return [required(path, "at least 1 access mode is required")]
    errs = [not_supported(path, m, ACCESS_MODES) for m in items if m not in ACCESS_MODES]
    if "ReadWriteOncePod" in items and len(items) > 1:
        errs.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def claim_spec(spec: dict[str, Any], path: str) -> Errors:
    """``ValidatePersistentVolumeClaimSpec``; also used for StatefulSet volumeClaimTemplates."""
    errs = _access_modes(spec.get("accessModes"), f"{path}.accessModes")
    errs.extend(validate_label_selector(spec.get("selector"), f"{path}.selector"))
    storage_path = f"{path}.resources[storage]"
    requests = as_dict(as_dict(spec.get("resources")).get("requests"))
    if "storage" not in requests:
        errs.append(required(storage_path))
    else:
        amount = quantities.parse(requests["storage"])
        if amount is None:
            errs.append(invalid(storage_path, quantities.text(requests["storage"]), quantities.QUANTITY_FORMAT_ERROR))
        elif amount <= 0:
            errs.append(invalid(storage_path, quantities.text(requests["storage"]), "must be greater than zero"))
    class_name = as_str(spec.get("storageClassName"))
    if class_name:
        errs.extend(invalid(f"{path}.storageClassName", class_name, m) for m in name_is_dns_subdomain(class_name, False))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        errs.append(not_supported(f"{path}.volumeMode", mode, VOLUME_MODES))
    return errs


def pvc_create(pvc: dict[str, Any]) -> Errors:
    return validate_object_meta(pvc, True, name_is_dns_subdomain) + claim_spec(as_dict(pvc.get("spec")), "spec")


def pvc_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = validate_object_meta_update(new, old) + claim_spec(as_dict(new.get("spec")), "spec")
    new_spec, old_spec = copy.deepcopy(as_dict(new.get("spec"))), copy.deepcopy(as_dict(old.get("spec")))
    if not old_spec.get("volumeName"):
        new_spec.pop("volumeName", None)
        old_spec.pop("volumeName", None)
    if old_spec.get("storageClassName") is None and new_spec.get("storageClassName") is not None:
        new_spec.pop("storageClassName")
    bound = as_dict(old.get("status")).get("phase") == "Bound"
    new_size = as_dict(as_dict(new_spec.get("resources")).get("requests")).get("storage")
    old_size = as_dict(as_dict(old_spec.get("resources")).get("requests")).get("storage")
    if bound:
        for spec in (new_spec, old_spec):
            as_dict(as_dict(spec.get("resources")).get("requests")).pop("storage", None)
            spec.pop("volumeAttributesClassName", None)
    if new_spec != old_spec:
        errs.append(forbidden("spec", "spec is immutable after creation except resources.requests and "
                              "volumeAttributesClassName for bound claims\n"
                              + spec_diff(old_spec, new_spec, "core.PersistentVolumeClaimSpec")))
    new_amount, old_amount = quantities.parse(new_size), quantities.parse(old_size)
    if new_amount is not None and old_amount is not None and new_amount < old_amount:
        errs.append(forbidden("spec.resources.requests.storage", "field can not be less than previous value"))
    return errs


# -- PersistentVolume ----------------------------------------------------------------------------------------
def pv_create(pv: dict[str, Any]) -> Errors:
    errs = validate_object_meta(pv, False, name_is_dns_subdomain)
    spec = as_dict(pv.get("spec"))
    errs.extend(_access_modes(spec.get("accessModes"), "spec.accessModes"))
    capacity = as_dict(spec.get("capacity"))
    if not capacity:
        errs.append(required("spec.capacity"))
    elif "storage" not in capacity or len(capacity) > 1:
        errs.append(not_supported("spec.capacity", capacity, ["storage"]))
    else:
        errs.extend(quantities.validate_value("storage", capacity["storage"], "spec.capacity[storage]"))
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy and policy not in ("Delete", "Recycle", "Retain"):
        errs.append(not_supported("spec.persistentVolumeReclaimPolicy", policy, ["Delete", "Recycle", "Retain"]))
    class_name = as_str(spec.get("storageClassName"))
    if class_name:
        errs.extend(invalid("spec.storageClassName", class_name, m) for m in name_is_dns_subdomain(class_name, False))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        errs.append(not_supported("spec.volumeMode", mode, VOLUME_MODES))
    source = {k: v for k, v in spec.items() if k not in _PV_NON_SOURCE}
    _, source_errs = validate_volumes([{"name": "pv", **source}], "spec")
    return errs + [_reroot(e) for e in source_errs]


_PV_NON_SOURCE = frozenset({"accessModes", "capacity", "claimRef", "mountOptions", "nodeAffinity",
                            "persistentVolumeReclaimPolicy", "storageClassName", "volumeMode",
                            "volumeAttributesClassName"})


def _reroot(error: Any) -> Any:
    """Volume-source errors were produced for ``spec[0]``; a PV's sources sit directly under ``spec``."""
    error.field = error.field.replace("spec[0]", "spec", 1)
    return error


def pv_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = validate_object_meta_update(new, old) + pv_create(new)
    new_spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    new_source = {k: v for k, v in new_spec.items() if k not in _PV_NON_SOURCE}
    old_source = {k: v for k, v in old_spec.items() if k not in _PV_NON_SOURCE}
    if new_source != old_source:
        errs.append(forbidden("spec.persistentvolumesource", "spec.persistentvolumesource is immutable after "
                              "creation\n" + spec_diff(old_source, new_source, "core.PersistentVolumeSource")))
    errs.extend(immutable("volumeMode", new_spec.get("volumeMode"), old_spec.get("volumeMode")))
    return errs


# -- StorageClass --------------------------------------------------------------------------------------------
def storageclass_create(sc: dict[str, Any]) -> Errors:
    errs = validate_object_meta(sc, False, name_is_dns_subdomain)
    provisioner = as_str(sc.get("provisioner"))
    if not provisioner:
        errs.append(required("provisioner", ""))
    else:
        errs.extend(invalid("provisioner", provisioner.lower(), m) for m in formats.is_qualified_name(provisioner.lower()))
    policy = sc.get("reclaimPolicy")
    if policy is not None and policy not in ("Delete", "Retain"):
        errs.append(not_supported("reclaimPolicy", policy, ["Delete", "Retain"]))
    mode = sc.get("volumeBindingMode")
    if mode is None:
        errs.append(required("volumeBindingMode"))
    elif mode not in ("Immediate", "WaitForFirstConsumer"):
        errs.append(not_supported("volumeBindingMode", mode, ["Immediate", "WaitForFirstConsumer"]))
    return errs


def storageclass_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = validate_object_meta_update(new, old)
    if (new.get("parameters") or {}) != (old.get("parameters") or {}):
        errs.append(forbidden("parameters", "updates to parameters are forbidden."))
    if new.get("provisioner") != old.get("provisioner"):
        errs.append(forbidden("provisioner", "updates to provisioner are forbidden."))
    if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
        errs.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
    errs.extend(immutable("volumeBindingMode", new.get("volumeBindingMode"), old.get("volumeBindingMode")))
    return errs
