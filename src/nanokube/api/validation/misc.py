"""The smaller groups: RBAC, policy (PDB), coordination (Lease), discovery (EndpointSlice), scheduling
(PriorityClass), events.k8s.io Events and CustomResourceDefinitions.

Each gets its metadata rule plus the few checks that keep controllers and clients from choking: RBAC
bindings need a valid ``roleRef`` that never changes (``cannot change roleRef``), PriorityClass values are
fixed once set, a PDB may set minAvailable or maxUnavailable but not both.
"""

from __future__ import annotations

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
    forbidden,
    immutable,
    index,
    invalid,
    not_supported,
    required,
)
from .meta import (
    name_is_dns_subdomain,
    name_is_path_segment,
    validate_object_meta,
    validate_object_meta_update,
)
from .selectors import validate_label_selector

RBAC_GROUP = "rbac.authorization.k8s.io"
HIGHEST_USER_PRIORITY = 1000000000
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}


# -- RBAC ----------------------------------------------------------------------------------------------------
def _rules(rules: Any, namespaced: bool) -> Errors:
    errs: Errors = []
    for i, rule in enumerate(as_list(rules)):
        rule, rpath = as_dict(rule), index("rules", i)
        if not as_list(rule.get("verbs")):
            errs.append(required(child(rpath, "verbs"), "verbs must contain at least one value"))
        urls = as_list(rule.get("nonResourceURLs"))
        if urls:
            if namespaced:
                errs.append(invalid(child(rpath, "nonResourceURLs"), urls, "namespaced rules cannot apply to "
                                    "non-resource URLs"))
            if as_list(rule.get("apiGroups")) or as_list(rule.get("resources")) or as_list(rule.get("resourceNames")):
                errs.append(invalid(child(rpath, "nonResourceURLs"), urls, "rules cannot apply to both regular "
                                    "resources and non-resource URLs"))
            continue
        if not as_list(rule.get("apiGroups")):
            errs.append(required(child(rpath, "apiGroups"), "resource rules must supply at least one api group"))
        if not as_list(rule.get("resources")):
            errs.append(required(child(rpath, "resources"), "resource rules must supply at least one resource"))
    return errs


def role_create(role: dict[str, Any]) -> Errors:
    return validate_object_meta(role, True, name_is_path_segment) + _rules(role.get("rules"), True)


def clusterrole_create(role: dict[str, Any]) -> Errors:
    return validate_object_meta(role, False, name_is_path_segment) + _rules(role.get("rules"), False)


def _binding(binding: dict[str, Any], namespaced: bool) -> Errors:
    ref = as_dict(binding.get("roleRef"))
    errs: Errors = []
    if ref.get("apiGroup") != RBAC_GROUP:
        errs.append(not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [RBAC_GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        errs.append(not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    name = as_str(ref.get("name"))
    if not name:
        errs.append(required("roleRef.name"))
    else:
        errs.extend(invalid("roleRef.name", name, m) for m in formats.is_path_segment_name(name))
    for i, subject in enumerate(as_list(binding.get("subjects"))):
        errs.extend(_subject(as_dict(subject), namespaced, index("subjects", i)))
    return errs


def _subject(subject: dict[str, Any], namespaced: bool, path: str) -> Errors:
    errs: Errors = []
    name, kind, group = as_str(subject.get("name")), subject.get("kind"), as_str(subject.get("apiGroup"))
    if not name:
        errs.append(required(child(path, "name")))
    if kind == "ServiceAccount":
        if group:
            errs.append(not_supported(child(path, "apiGroup"), group, [""]))
        if not as_str(subject.get("namespace")) and not namespaced:
            errs.append(required(child(path, "namespace")))
    elif kind in ("User", "Group"):
        if group != RBAC_GROUP:
            errs.append(not_supported(child(path, "apiGroup"), group, [RBAC_GROUP]))
    else:
        errs.append(not_supported(child(path, "kind"), kind or "", ["ServiceAccount", "User", "Group"]))
    return errs


def rolebinding_create(rb: dict[str, Any]) -> Errors:
    return validate_object_meta(rb, True, name_is_path_segment) + _binding(rb, True)


def clusterrolebinding_create(rb: dict[str, Any]) -> Errors:
    return validate_object_meta(rb, False, name_is_path_segment) + _binding(rb, False)


def _binding_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    if as_dict(new.get("roleRef")) != as_dict(old.get("roleRef")):
        return [invalid("roleRef", new.get("roleRef"), "cannot change roleRef")]
    return []


def role_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return role_create(new) + validate_object_meta_update(new, old)


def clusterrole_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return clusterrole_create(new) + validate_object_meta_update(new, old)


def rolebinding_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return rolebinding_create(new) + validate_object_meta_update(new, old) + _binding_update(new, old)


def clusterrolebinding_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return clusterrolebinding_create(new) + validate_object_meta_update(new, old) + _binding_update(new, old)


# -- PodDisruptionBudget -------------------------------------------------------------------------------------
def _int_or_percent(value: Any, path: str) -> Errors:
    if isinstance(value, str):
        errs = [invalid(path, value, m) for m in formats.is_valid_percent(value)]
        if not errs and int(value[:-1]) > 100:
            errs.append(invalid(path, value, "must not be greater than 100%"))
        return errs
    number = as_int(value)
    if number is not None and number < 0:
        return [invalid(path, number, "must be greater than or equal to 0")]
    return []


def pdb_create(pdb: dict[str, Any]) -> Errors:
    errs = validate_object_meta(pdb, True, name_is_dns_subdomain)
    spec = as_dict(pdb.get("spec"))
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.append(invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
    for field in ("minAvailable", "maxUnavailable"):
        if spec.get(field) is not None:
            errs.extend(_int_or_percent(spec[field], f"spec.{field}"))
    errs.extend(validate_label_selector(spec.get("selector"), "spec.selector"))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in ("AlwaysAllow", "IfHealthyBudget"):
        errs.append(not_supported("spec.unhealthyPodEvictionPolicy", policy, ["AlwaysAllow", "IfHealthyBudget"]))
    return errs


def pdb_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return validate_object_meta_update(new, old) + pdb_create(new)


# -- Lease, EndpointSlice ------------------------------------------------------------------------------------
def lease_create(lease: dict[str, Any]) -> Errors:
    errs = validate_object_meta(lease, True, name_is_dns_subdomain)
    spec = as_dict(lease.get("spec"))
    duration = as_int(spec.get("leaseDurationSeconds"))
    if duration is not None and duration <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = as_int(spec.get("leaseTransitions"))
    if transitions is not None and transitions < 0:
        errs.append(invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    return errs


def lease_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return validate_object_meta_update(new, old) + lease_create(new)


_ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")


def endpointslice_create(eps: dict[str, Any]) -> Errors:
    errs = validate_object_meta(eps, True, name_is_dns_subdomain)
    address_type = eps.get("addressType")
    if not address_type:
        errs.append(required("addressType"))
    elif address_type not in _ADDRESS_TYPES:
        errs.append(not_supported("addressType", address_type, _ADDRESS_TYPES))
    for i, endpoint in enumerate(as_list(eps.get("endpoints"))):
        addresses, epath = as_list(as_dict(endpoint).get("addresses")), child(index("endpoints", i), "addresses")
        if not addresses:
            errs.append(required(epath, "must contain at least 1 address"))
        for j, address in enumerate(addresses):
            text = as_str(address)
            msgs = formats.is_dns1123_subdomain(text) if address_type == "FQDN" else formats.is_valid_ip(text)
            errs.extend(invalid(index(epath, j), text, m) for m in msgs)
    for i, port in enumerate(as_list(eps.get("ports"))):
        port, ppath = as_dict(port), index("ports", i)
        name = as_str(port.get("name"))
        if name:
            errs.extend(invalid(child(ppath, "name"), name, m) for m in formats.is_dns1123_label(name))
        protocol = port.get("protocol")
        if protocol is not None and protocol not in PROTOCOLS:
            errs.append(not_supported(child(ppath, "protocol"), protocol, PROTOCOLS))
        number = as_int(port.get("port"))
        if number is not None:
            errs.extend(invalid(child(ppath, "port"), number, m) for m in formats.is_valid_port_num(number))
    return errs


def endpointslice_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = validate_object_meta_update(new, old) + endpointslice_create(new)
    return errs + immutable("addressType", new.get("addressType"), old.get("addressType"))


# -- PriorityClass -------------------------------------------------------------------------------------------
def priorityclass_create(pc: dict[str, Any]) -> Errors:
    errs = validate_object_meta(pc, False, name_is_dns_subdomain)
    name = as_str(as_dict(pc.get("metadata")).get("name"))
    value = as_int(pc.get("value"))
    if name.startswith("system-"):
        if SYSTEM_PRIORITY_CLASSES.get(name) != value:
            reason = (f"priority class {name} is not a known system priority class" if name not in
                      SYSTEM_PRIORITY_CLASSES else f"value of {name} PriorityClass must be "
                      f"{SYSTEM_PRIORITY_CLASSES[name]}")
            errs.append(forbidden("metadata.name", "priority class names with 'system-' prefix are reserved for "
                                  "system use only. error: " + reason))
    elif value is not None and value > HIGHEST_USER_PRIORITY:
        errs.append(forbidden("value", f"maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"))
    policy = pc.get("preemptionPolicy")
    if policy is not None and policy not in ("PreemptLowerPriority", "Never"):
        errs.append(not_supported("preemptionPolicy", policy, ["PreemptLowerPriority", "Never"]))
    return errs


def priorityclass_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = validate_object_meta_update(new, old)
    if new.get("value") != old.get("value"):
        errs.append(forbidden("value", "may not be changed in an update."))
    return errs + immutable("preemptionPolicy", new.get("preemptionPolicy"), old.get("preemptionPolicy"))


# -- events.k8s.io Event, CRD --------------------------------------------------------------------------------
def events_event_create(event: dict[str, Any]) -> Errors:
    errs = validate_object_meta(event, True, name_is_dns_subdomain)
    if not event.get("eventTime"):
        errs.append(required("eventTime"))
    for field in ("reportingController", "reportingInstance", "action", "reason"):
        if not as_str(event.get(field)):
            errs.append(required(field))
    kind = event.get("type")
    if kind not in ("Normal", "Warning"):
        errs.append(invalid("type", "", f"has invalid value: {as_str(kind)}"))
    return errs


def events_event_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return validate_object_meta_update(new, old)


def metadata_create(obj: dict[str, Any], namespaced: bool) -> Errors:
    return validate_object_meta(obj, namespaced, name_is_dns_subdomain)


def metadata_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    return validate_object_meta_update(new, old)
