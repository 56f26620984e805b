"""PodSpec and PodTemplateSpec validation (``ValidatePodSpec``, ``ValidatePodTemplateSpec``).

Everything that embeds pods (Pod, ReplicaSet, Deployment, StatefulSet, DaemonSet, Job, CronJob, RC) goes
through ``validate_pod_spec``; the workload modules add their own rules (restartPolicy, selector) on top.
Scheduling fields (tolerations, affinity, topology spread) are checked here too, since the scheduler relies on
them being well formed.
"""

from __future__ import annotations

from typing import Any

from . import formats
from .containers import range_check, validate_containers, validate_init_containers
from .field import (
    Errors,
    as_dict,
    as_int,
    as_list,
    as_str,
    child,
    duplicate,
    forbidden,
    index,
    invalid,
    not_supported,
    required,
)
from .meta import (
    name_is_dns_label,
    name_is_dns_subdomain,
    validate_annotations,
    validate_label_name,
    validate_labels,
)
from .selectors import validate_label_selector
from .volumes import validate_volumes

MAX_INT32 = 2**31 - 1
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def validate_pod_spec(spec: Any, path: str, is_pod: bool = False) -> Errors:
    spec = as_dict(spec)
    errs: Errors = []
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is None:
        errs.append(required(child(path, "terminationGracePeriodSeconds")))
    volumes, volume_errs = validate_volumes(spec.get("volumes"), child(path, "volumes"))
    errs.extend(volume_errs)
    errs.extend(validate_containers(spec.get("containers"), volumes, grace, child(path, "containers")))
    errs.extend(validate_init_containers(spec.get("initContainers"), spec.get("containers"), volumes, grace,
                                         child(path, "initContainers")))
    errs.extend(_host_network(spec, path, is_pod))
    errs.extend(_enum(spec.get("restartPolicy"), RESTART_POLICIES, child(path, "restartPolicy")))
    errs.extend(_enum(spec.get("dnsPolicy"), DNS_POLICIES, child(path, "dnsPolicy")))
    errs.extend(validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector")))
    errs.extend(_security_context(spec.get("securityContext"), child(path, "securityContext")))
    errs.extend(_pull_secrets(spec.get("imagePullSecrets"), child(path, "imagePullSecrets")))
    errs.extend(_affinity(spec.get("affinity"), child(path, "affinity")))
    errs.extend(_dns_config(spec, child(path, "dnsConfig")))
    errs.extend(_gates(spec, path))
    errs.extend(_topology_spread(spec.get("topologySpreadConstraints"), child(path, "topologySpreadConstraints")))
    errs.extend(_names(spec, path))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None:
        errs.extend(range_check(deadline, 1, MAX_INT32, child(path, "activeDeadlineSeconds")))
    errs.extend(validate_tolerations(spec.get("tolerations"), child(path, "tolerations")))
    policy = spec.get("preemptionPolicy")
    if policy is not None:
        errs.extend(_enum(policy, ("PreemptLowerPriority", "Never"), child(path, "preemptionPolicy")))
    return errs


def _enum(value: Any, valid: tuple[str, ...], path: str) -> Errors:
    if not value:
        return [required(path)]
    if value not in valid:
        return [not_supported(path, value, valid)]
    return []


def _host_network(spec: dict[str, Any], path: str, is_pod: bool) -> Errors:
    if not spec.get("hostNetwork"):
        return []
    errs: Errors = []
    for ci, ctr in enumerate(as_list(spec.get("containers"))):
        for pi, port in enumerate(as_list(as_dict(ctr).get("ports"))):
            port = as_dict(port)
            host, container = as_int(port.get("hostPort")) or 0, as_int(port.get("containerPort")) or 0
            if (is_pod or host != 0) and host != container:
                ppath = child(index(child(index(child(path, "containers"), ci), "ports"), pi), "hostPort")
                errs.append(invalid(ppath, host, "must match `containerPort` when `hostNetwork` is true"))
    return errs


def _security_context(context: Any, path: str) -> Errors:
    ctx = as_dict(context)
    errs: Errors = []
    for field in ("fsGroup", "runAsUser", "runAsGroup"):
        if ctx.get(field) is not None:
            errs.extend(range_check(ctx[field], 0, MAX_INT32, child(path, field)))
    for i, gid in enumerate(as_list(ctx.get("supplementalGroups"))):
        errs.extend(range_check(gid, 0, MAX_INT32, index(child(path, "supplementalGroups"), i)))
    return errs


def _pull_secrets(secrets: Any, path: str) -> Errors:
    errs: Errors = []
    for i, ref in enumerate(as_list(secrets)):
        if set(as_dict(ref)) - {"name"}:
            errs.append(invalid(index(path, i), ref, "only name may be set"))
    return errs


def _dns_config(spec: dict[str, Any], path: str) -> Errors:
    config = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if config is None:
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not as_list(as_dict(config).get("nameservers")):
            return [required(child(path, "nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` "
                             "is None")]
    cfg = as_dict(config)
    errs: Errors = []
    servers = as_list(cfg.get("nameservers"))
    if len(servers) > 3:
        errs.append(invalid(child(path, "nameservers"), servers, "must not have more than 3 nameservers"))
    for i, server in enumerate(servers):
        errs.extend(invalid(index(child(path, "nameservers"), i), server, m)
                    for m in formats.is_valid_ip(as_str(server)))
    for i, option in enumerate(as_list(cfg.get("options"))):
        if not as_str(as_dict(option).get("name")):
            errs.append(required(index(child(path, "options"), i), "must not be empty"))
    return errs


def _gates(spec: dict[str, Any], path: str) -> Errors:
    errs: Errors = []
    for i, gate in enumerate(as_list(spec.get("readinessGates"))):
        cond = as_str(as_dict(gate).get("conditionType"))
        gpath = child(index(child(path, "readinessGates"), i), "conditionType")
        errs.extend(invalid(gpath, cond, m) for m in formats.is_qualified_name(cond))
    seen: set[str] = set()
    for i, gate in enumerate(as_list(spec.get("schedulingGates"))):
        name, gpath = as_str(as_dict(gate).get("name")), index(child(path, "schedulingGates"), i)
        errs.extend(invalid(gpath, name, m) for m in formats.is_qualified_name(name))
        if name in seen:
            errs.append(duplicate(gpath, name))
        seen.add(name)
    return errs


def _names(spec: dict[str, Any], path: str) -> Errors:
    errs: Errors = []
    checks = (("serviceAccountName", name_is_dns_subdomain), ("nodeName", name_is_dns_subdomain),
              ("priorityClassName", name_is_dns_subdomain), ("hostname", name_is_dns_label),
              ("subdomain", name_is_dns_label))
    for field, fn in checks:
        value = as_str(spec.get(field))
        if value:
            errs.extend(invalid(child(path, field), value, m) for m in fn(value, False))
    for i, alias in enumerate(as_list(spec.get("hostAliases"))):
        alias, apath = as_dict(alias), index(child(path, "hostAliases"), i)
        errs.extend(invalid(child(apath, "ip"), alias.get("ip", ""), m)
                    for m in formats.is_valid_ip(as_str(alias.get("ip"))))
        for j, host in enumerate(as_list(alias.get("hostnames"))):
            errs.extend(invalid(index(child(apath, "hostnames"), j), host, m)
                        for m in formats.is_dns1123_subdomain(as_str(host)))
    return errs


def validate_tolerations(tolerations: Any, path: str) -> Errors:
    errs: Errors = []
    for i, tol in enumerate(as_list(tolerations)):
        tol, tpath = as_dict(tol), index(path, i)
        tkey, operator, value = as_str(tol.get("key")), tol.get("operator") or "", as_str(tol.get("value"))
        effect = as_str(tol.get("effect"))
        if tkey:
            errs.extend(validate_label_name(tkey, child(tpath, "key")))
        if not tkey and operator != "Exists":
            errs.append(invalid(child(tpath, "operator"), operator, "operator must be Exists when `key` is empty, "
                                'which means "match all values and all keys"'))
        if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(invalid(child(tpath, "effect"), effect, "effect must be 'NoExecute' when `tolerationSeconds` "
                                "is set"))
        if operator in ("Equal", ""):
            msgs = formats.is_valid_label_value(value)
            if msgs:
                errs.append(invalid(child(tpath, "operator"), value, ";".join(msgs)))
        elif operator == "Exists":
            if value:
                errs.append(invalid(child(tpath, "operator"), value, "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(not_supported(child(tpath, "operator"), operator, ["Equal", "Exists"]))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(not_supported(child(tpath, "effect"), effect, TAINT_EFFECTS))
    return errs


def _affinity(affinity: Any, path: str) -> Errors:
    aff = as_dict(affinity)
    errs: Errors = []
    node = aff.get("nodeAffinity")
    if isinstance(node, dict):
        errs.extend(_node_affinity(node, child(path, "nodeAffinity")))
    for kind in ("podAffinity", "podAntiAffinity"):
        pod = aff.get(kind)
        if not isinstance(pod, dict):
            continue
        kpath = child(path, kind)
        for i, term in enumerate(as_list(pod.get("requiredDuringSchedulingIgnoredDuringExecution"))):
            errs.extend(_pod_affinity_term(as_dict(term),
                                           index(child(kpath, "requiredDuringSchedulingIgnoredDuringExecution"), i)))
        for i, weighted in enumerate(as_list(pod.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            weighted = as_dict(weighted)
            wpath = index(child(kpath, "preferredDuringSchedulingIgnoredDuringExecution"), i)
            errs.extend(_weight(weighted, wpath))
            errs.extend(_pod_affinity_term(as_dict(weighted.get("podAffinityTerm")), child(wpath, "podAffinityTerm")))
    return errs


def _weight(item: dict[str, Any], path: str) -> Errors:
    weight = as_int(item.get("weight")) or 0
    if not 1 <= weight <= 100:
        return [invalid(child(path, "weight"), weight, "must be in the range 1-100")]
    return []


def _node_affinity(node: dict[str, Any], path: str) -> Errors:
    errs: Errors = []
    required_terms = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    if isinstance(required_terms, dict):
        rpath = child(path, "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
        terms = as_list(required_terms.get("nodeSelectorTerms"))
        if not terms:
            errs.append(required(rpath, "must have at least one node selector term"))
        for i, term in enumerate(terms):
            errs.extend(validate_node_selector_term(as_dict(term), index(rpath, i), check_values=True))
    for i, pref in enumerate(as_list(node.get("preferredDuringSchedulingIgnoredDuringExecution"))):
        pref, ppath = as_dict(pref), index(child(path, "preferredDuringSchedulingIgnoredDuringExecution"), i)
        errs.extend(_weight(pref, ppath))
        errs.extend(validate_node_selector_term(as_dict(pref.get("preference")), child(ppath, "preference"),
                                                check_values=False))
    return errs


def validate_node_selector_term(term: dict[str, Any], path: str, check_values: bool) -> Errors:
    errs: Errors = []
    for i, req in enumerate(as_list(term.get("matchExpressions"))):
        req, rpath = as_dict(req), index(child(path, "matchExpressions"), i)
        operator, values = req.get("operator"), as_list(req.get("values"))
        if operator in ("In", "NotIn"):
            if not values:
                errs.append(required(child(rpath, "values"), "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.append(forbidden(child(rpath, "values"), "may not be specified when `operator` is 'Exists' or "
                                      "'DoesNotExist'"))
        elif operator in ("Gt", "Lt"):
            if len(values) != 1:
                errs.append(required(child(rpath, "values"), "must be specified single value when `operator` is "
                                     "'Lt' or 'Gt'"))
        else:
            errs.append(invalid(child(rpath, "operator"), operator or "", "not a valid selector operator"))
        errs.extend(validate_label_name(as_str(req.get("key")), child(rpath, "key")))
        if check_values:
            for j, value in enumerate(values):
                errs.extend(invalid(index(child(rpath, "values"), j), value, m)
                            for m in formats.is_valid_label_value(as_str(value)))
    return errs


def _pod_affinity_term(term: dict[str, Any], path: str) -> Errors:
    errs = validate_label_selector(term.get("labelSelector"), child(path, "labelSelector"))
    errs.extend(validate_label_selector(term.get("namespaceSelector"), child(path, "namespaceSelector")))
    for ns in as_list(term.get("namespaces")):
        errs.extend(invalid(child(path, "namespace"), ns, m) for m in name_is_dns_label(as_str(ns), False))
    topology = as_str(term.get("topologyKey"))
    if not topology:
        errs.append(required(child(path, "topologyKey"), "can not be empty"))
    return errs + validate_label_name(topology, child(path, "topologyKey"))


def _topology_spread(constraints: Any, path: str) -> Errors:
    errs: Errors = []
    items = [as_dict(c) for c in as_list(constraints)]
    for i, c in enumerate(items):
        cpath = index(path, i)
        skew = as_int(c.get("maxSkew")) or 0
        if skew <= 0:
            errs.append(invalid(child(cpath, "maxSkew"), skew, "must be greater than zero"))
        topology = as_str(c.get("topologyKey"))
        if not topology:
            errs.append(required(child(cpath, "topologyKey"), "can not be empty"))
        action = c.get("whenUnsatisfiable")
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(not_supported(child(cpath, "whenUnsatisfiable"), action or "",
                                      ["DoNotSchedule", "ScheduleAnyway"]))
        for later in items[i + 1:]:
            if later.get("topologyKey") == c.get("topologyKey") and \
                    later.get("whenUnsatisfiable") == c.get("whenUnsatisfiable"):
                errs.append(duplicate(child(cpath, "{topologyKey, whenUnsatisfiable}"),
                                           f"{{{topology}, {action or ''}}}"))
                break
        errs.extend(validate_label_selector(c.get("labelSelector"), child(cpath, "labelSelector")))
    return errs


def validate_pod_template_spec(template: Any, path: str) -> Errors:
    """``ValidatePodTemplateSpec``: template labels/annotations, the pod spec, and no ephemeral containers."""
    tmpl = as_dict(template)
    meta = as_dict(tmpl.get("metadata"))
    errs = validate_labels(meta.get("labels"), child(path, "labels"))
    errs.extend(validate_annotations(meta.get("annotations"), child(path, "annotations")))
    spec = as_dict(tmpl.get("spec"))
    errs.extend(validate_pod_spec(spec, child(path, "spec")))
    if as_list(spec.get("ephemeralContainers")):
        errs.append(forbidden(child(path, "spec", "ephemeralContainers"), "ephemeral containers not allowed in pod "
                              "template"))
    return errs
