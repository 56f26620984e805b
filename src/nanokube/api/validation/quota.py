"""LimitRange and ResourceQuota: resource names, quantities and the orderings between min, max and defaults."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from . import formats, quantities
from .field import (
    Errors,
    as_dict,
    as_list,
    as_str,
    child,
    duplicate,
    forbidden,
    index,
    invalid,
    key,
    required,
)
from .meta import name_is_dns_subdomain, validate_object_meta, validate_object_meta_update

LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
QUOTA_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
                "CrossNamespacePodAffinity", "VolumeAttributesClass")
_QUOTA_RESOURCES = quantities.STANDARD_RESOURCES - {"storage"}


def _limit_resource_name(kind: str, name: str, path: str) -> Errors:
    if kind in ("Pod", "Container"):
        return quantities.validate_container_resource_name(name, path)
    return quantities.validate_resource_name(name, path)


def _limit_item(item: dict[str, Any], path: str) -> Errors:
    kind = as_str(item.get("type"))
    errs = [invalid(child(path, "type"), kind, m) for m in formats.is_qualified_name(kind)]
    if not errs and "/" not in kind and kind not in LIMIT_TYPES:
        errs.append(invalid(child(path, "type"), kind, "must be a standard limit type or fully qualified"))
    values: dict[str, dict[str, Fraction]] = {}
    fields = ["max", "min", "maxLimitRequestRatio"]
    if kind == "Pod":
        for field in ("default", "defaultRequest"):
            if as_dict(item.get(field)):
                errs.append(forbidden(child(path, field), "may not be specified when `type` is 'Pod'"))
    else:
        fields += ["default", "defaultRequest"]
    for field in fields:
        values[field] = {}
        for name, value in as_dict(item.get(field)).items():
            qpath = key(child(path, field), name)
            errs.extend(_limit_resource_name(kind, name, qpath))
            amount = quantities.parse(value)
            if amount is None:
                errs.append(invalid(qpath, quantities.text(value), quantities.QUANTITY_FORMAT_ERROR))
            else:
                values[field][name] = amount
    if kind == "PersistentVolumeClaim" and "storage" not in values["min"] and "storage" not in values["max"]:
        errs.append(required(child(path, "limits"), "either minimum or maximum storage value is required, but neither "
                             "was provided"))
    return errs + _orderings(item, values, path)


def _orderings(item: dict[str, Any], values: dict[str, dict[str, Fraction]], path: str) -> Errors:
    errs: Errors = []
    low, high = values["min"], values["max"]
    default, request = values.get("default", {}), values.get("defaultRequest", {})
    raw = {f: as_dict(item.get(f)) for f in ("min", "max", "default", "defaultRequest")}
    names = set().union(*values.values())
    for name in sorted(names):
        def text(field: str, name: str = name) -> str:
            return quantities.text(raw[field].get(name))
        if name in low and name in high and low[name] > high[name]:
            errs.append(invalid(key(child(path, "min"), name), text("min"),
                                f"min value {text('min')} is greater than max value {text('max')}"))
        if name in request and name in low and low[name] > request[name]:
            errs.append(invalid(key(child(path, "defaultRequest"), name), text("defaultRequest"),
                                f"min value {text('min')} is greater than default request value {text('defaultRequest')}"))
        if name in request and name in high and request[name] > high[name]:
            errs.append(invalid(key(child(path, "defaultRequest"), name), text("defaultRequest"),
                                f"default request value {text('defaultRequest')} is greater than max value {text('max')}"))
        if name in request and name in default and request[name] > default[name]:
            errs.append(invalid(key(child(path, "defaultRequest"), name), text("defaultRequest"),
                                f"default request value {text('defaultRequest')} is greater than default limit value "
                                f"{text('default')}"))
        if name in default and name in low and low[name] > default[name]:
            errs.append(invalid(key(child(path, "default"), name), text("min"),
                                f"min value {text('min')} is greater than default value {text('default')}"))
        if name in default and name in high and default[name] > high[name]:
            errs.append(invalid(key(child(path, "default"), name), text("max"),
                                f"default value {text('default')} is greater than max value {text('max')}"))
    return errs


def limitrange_create(lr: dict[str, Any]) -> Errors:
    errs = validate_object_meta(lr, True, name_is_dns_subdomain)
    seen: set[str] = set()
    for i, item in enumerate(as_list(as_dict(lr.get("spec")).get("limits"))):
        item, ipath = as_dict(item), index("spec.limits", i)
        errs.extend(_limit_item(item, ipath))
        kind = as_str(item.get("type"))
        if kind in seen:
            errs.append(duplicate(child(ipath, "type"), kind))
        seen.add(kind)
    return errs


def limitrange_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return validate_object_meta_update(new, old) + limitrange_create(new)


def _quota_spec(spec: dict[str, Any]) -> Errors:
    errs: Errors = []
    for name, value in as_dict(spec.get("hard")).items():
        qpath = key("spec.hard", name)
        errs.extend(quantities.validate_resource_name(name, qpath))
        if "/" not in name and name not in _QUOTA_RESOURCES and not name.startswith(("requests.hugepages-",
                                                                                    "limits.hugepages-")):
            errs.append(invalid(qpath, name, "must be a standard resource for quota"))
        errs.extend(quantities.validate_value(name, value, qpath))
    scopes = as_list(spec.get("scopes"))
    for scope in scopes:
        if scope not in QUOTA_SCOPES:
            errs.append(invalid("spec.scopes", scopes, "unsupported scope"))
    for pair in (("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating")):
        if all(p in scopes for p in pair):
            errs.append(invalid("spec.scopes", scopes, "conflicting scopes"))
    return errs


def resourcequota_create(rq: dict[str, Any]) -> Errors:
    return validate_object_meta(rq, True, name_is_dns_subdomain) + _quota_spec(as_dict(rq.get("spec")))


def resourcequota_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = validate_object_meta_update(new, old) + _quota_spec(as_dict(new.get("spec")))
    new_scopes = set(as_list(as_dict(new.get("spec")).get("scopes")))
    if new_scopes != set(as_list(as_dict(old.get("spec")).get("scopes"))):
        errs.append(invalid("spec.scopes", as_list(as_dict(new.get("spec")).get("scopes")), "field is immutable"))
    return errs
