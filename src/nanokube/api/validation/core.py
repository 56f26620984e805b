"""Core-group data and infrastructure kinds: ConfigMap, Secret, Namespace, ServiceAccount, Node, Endpoints, Event.

Each kind has ``create(obj)`` and ``update(new, old)`` returning FieldErrors. ConfigMaps and Secrets check
their keys (``a valid config key must consist of alphanumeric characters, '-', '_' or '.'``) and the 1 MiB
limit, and freeze their data once ``immutable: true``. Pods and Services live in their own modules.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from . import formats
from .containers import PROTOCOLS
from .field import (
    Errors,
    as_dict,
    as_int,
    as_list,
    as_str,
    child,
    duplicate,
    forbidden,
    immutable,
    index,
    invalid,
    key,
    not_supported,
    required,
    too_long,
)
from .meta import (
    name_is_dns_label,
    name_is_dns_subdomain,
    validate_kube_finalizer_name,
    validate_label_name,
    validate_object_meta,
    validate_object_meta_update,
)
from .podspec import TAINT_EFFECTS

MAX_SECRET_SIZE = 1024 * 1024


def _meta_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return validate_object_meta_update(new, old)


# -- ConfigMap -----------------------------------------------------------------------------------------------
def configmap_create(cm: dict[str, Any]) -> Errors:
    errs = validate_object_meta(cm, True, name_is_dns_subdomain)
    data, binary = as_dict(cm.get("data")), as_dict(cm.get("binaryData"))
    total = 0
    for k, v in data.items():
        errs.extend(invalid(key("data", k), k, m) for m in formats.is_config_map_key(k))
        if k in binary:
            errs.append(invalid(key("data", k), k, "duplicate of key present in binaryData"))
        total += len(as_str(v).encode())
    for k, v in binary.items():
        errs.extend(invalid(key("binaryData", k), k, m) for m in formats.is_config_map_key(k))
        total += len(_decoded(v) or b"")
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("", MAX_SECRET_SIZE))
    return errs


def configmap_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = _meta_update(new, old)
    errs.extend(_immutable_data(new, old, ("data", "binaryData")))
    return errs + configmap_create(new)


def _immutable_data(new: dict[str, Any], old: dict[str, Any], fields: tuple[str, ...]) -> Errors:
    if old.get("immutable") is not True:
        return []
    errs: Errors = []
    if new.get("immutable") is not True:
        errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    for field in fields:
        if (new.get(field) or {}) != (old.get(field) or {}):
            errs.append(forbidden(field, "field is immutable when `immutable` is set"))
    return errs


# -- Secret --------------------------------------------------------------------------------------------------
def _decoded(value: Any) -> bytes | None:
    try:
        return base64.b64decode(as_str(value), validate=True)
    except (binascii.Error, ValueError):
        return None


_REQUIRED_SECRET_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def secret_create(secret: dict[str, Any]) -> Errors:
    errs = validate_object_meta(secret, True, name_is_dns_subdomain)
    data = as_dict(secret.get("data"))
    total = 0
    for k, v in data.items():
        errs.extend(invalid(key("data", k), k, m) for m in formats.is_config_map_key(k))
        total += len(_decoded(v) or b"")
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("data", MAX_SECRET_SIZE))
    kind = as_str(secret.get("type"))
    if kind == "kubernetes.io/service-account-token":
        annotations = as_dict(as_dict(secret.get("metadata")).get("annotations"))
        if not as_str(annotations.get("kubernetes.io/service-account.name")):
            errs.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif kind == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
        errs.extend([required("data[username]"), required("data[password]")])
    for needed in _REQUIRED_SECRET_KEYS.get(kind, ()):
        if needed not in data:
            errs.append(required(key("data", needed)))
        elif needed.startswith(".docker") and not _is_json(_decoded(data[needed])):
            errs.append(invalid(key("data", needed), "<secret contents redacted>", "invalid character looking for "
                                "beginning of value"))
    return errs


def _is_json(raw: bytes | None) -> bool:
    try:
        return raw is not None and isinstance(json.loads(raw), dict)
    except ValueError:
        return False


def secret_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = _meta_update(new, old)
    errs.extend(immutable("type", new.get("type", ""), old.get("type", "")))
    errs.extend(_immutable_data(new, old, ("data",)))
    return errs + secret_create(new)


# -- Namespace, ServiceAccount ---------------------------------------------------------------------------------
def namespace_create(ns: dict[str, Any]) -> Errors:
    errs = validate_object_meta(ns, False, name_is_dns_label)
    for name in as_list(as_dict(ns.get("spec")).get("finalizers")):
        text = as_str(name)
        errs.extend(invalid("spec.finalizers", text, m) for m in formats.is_qualified_name(text))
        errs.extend(validate_kube_finalizer_name(text, "spec.finalizers"))
    return errs


def namespace_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return _meta_update(new, old)


def serviceaccount_create(sa: dict[str, Any]) -> Errors:
    return validate_object_meta(sa, True, name_is_dns_subdomain)


def serviceaccount_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return _meta_update(new, old) + serviceaccount_create(new)


# -- Node ----------------------------------------------------------------------------------------------------
def _taints(taints: Any, path: str) -> Errors:
    errs: Errors = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(as_list(taints)):
        taint, tpath = as_dict(taint), index(path, i)
        tkey, value, effect = as_str(taint.get("key")), as_str(taint.get("value")), as_str(taint.get("effect"))
        errs.extend(validate_label_name(tkey, child(tpath, "key")))
        msgs = formats.is_valid_label_value(value)
        if msgs:
            errs.append(invalid(child(tpath, "value"), value, ";".join(msgs)))
        if not effect:
            errs.append(required(child(tpath, "effect")))
        elif effect not in TAINT_EFFECTS:
            errs.append(not_supported(child(tpath, "effect"), effect, TAINT_EFFECTS))
        if (tkey, effect) in seen:
            error = duplicate(tpath, taint)
            error.detail = "taints must be unique by key and effect pair"
            errs.append(error)
        seen.add((tkey, effect))
    return errs


def node_create(node: dict[str, Any]) -> Errors:
    errs = validate_object_meta(node, False, name_is_dns_subdomain)
    spec = as_dict(node.get("spec"))
    errs.extend(_taints(spec.get("taints"), "metadata.taints"))
    for i, cidr in enumerate(as_list(spec.get("podCIDRs"))):
        errs.extend(_cidr(as_str(cidr), index("spec.podCIDRs", i)))
    return errs


def _cidr(value: str, path: str) -> Errors:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return [invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    return []


def node_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = _meta_update(new, old)
    new_spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    old_cidrs = as_list(old_spec.get("podCIDRs"))
    if old_cidrs and old_cidrs != as_list(new_spec.get("podCIDRs")):
        errs.append(forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'))
    old_provider = as_str(old_spec.get("providerID"))
    if old_provider and old_provider != as_str(new_spec.get("providerID")):
        errs.append(forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid'))
    errs.extend(_taints(new_spec.get("taints"), "metadata.taints"))
    return errs


# -- Endpoints -----------------------------------------------------------------------------------------------
def endpoints_create(ep: dict[str, Any]) -> Errors:
    errs = validate_object_meta(ep, True, name_is_dns_subdomain)
    for i, subset in enumerate(as_list(ep.get("subsets"))):
        subset, spath = as_dict(subset), index("subsets", i)
        if not as_list(subset.get("addresses")) and not as_list(subset.get("notReadyAddresses")):
            errs.append(required(spath, "must specify `addresses` or `notReadyAddresses`"))
        for field in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(as_list(subset.get(field))):
                ip = as_str(as_dict(address).get("ip"))
                errs.extend(invalid(child(index(child(spath, field), j), "ip"), ip, m) for m in formats.is_valid_ip(ip))
        ports = [as_dict(p) for p in as_list(subset.get("ports"))]
        for j, port in enumerate(ports):
            errs.extend(_endpoint_port(port, len(ports) > 1, index(child(spath, "ports"), j)))
    return errs


def _endpoint_port(port: dict[str, Any], require_name: bool, path: str) -> Errors:
    errs: Errors = []
    name = as_str(port.get("name"))
    if require_name and not name:
        errs.append(required(child(path, "name")))
    elif name:
        errs.extend(invalid(child(path, "name"), name, m) for m in formats.is_dns1123_label(name))
    number = as_int(port.get("port")) or 0
    errs.extend(invalid(child(path, "port"), number, m) for m in formats.is_valid_port_num(number))
    protocol = port.get("protocol")
    if not protocol:
        errs.append(required(child(path, "protocol")))
    elif protocol not in PROTOCOLS:
        errs.append(not_supported(child(path, "protocol"), protocol, PROTOCOLS))
    return errs


def endpoints_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return _meta_update(new, old) + endpoints_create(new)


# -- Event (core/v1) -----------------------------------------------------------------------------------------
def event_create(event: dict[str, Any]) -> Errors:
    errs = validate_object_meta(event, True, name_is_dns_subdomain)
    namespace = as_str(as_dict(event.get("metadata")).get("namespace"))
    involved_ns = as_str(as_dict(event.get("involvedObject")).get("namespace"))
    if not event.get("eventTime"):
        mismatch = namespace not in ("", "default") if not involved_ns else namespace != involved_ns
        if mismatch:
            errs.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
        return errs
    for field in ("reportingController", "reportingInstance", "action", "reason"):
        if not as_str(event.get(field)):
            errs.append(required(field))
    return errs


def event_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return _meta_update(new, old) + event_create(new)
