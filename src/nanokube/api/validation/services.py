"""Services: ``ValidateService``/``ValidateServiceUpdate`` plus the node-port range check of the allocator.

Ports are required unless the service is headless or ExternalName; with more than one port each needs a
unique name; ``(protocol, port)`` pairs and node ports may not repeat. Once allocated, ``clusterIPs`` may not
change (``may not change once set``). The server allocates cluster IPs and node ports and copies them from the
stored object before calling ``update``; a node port a client asks for must lie in 30000-32767.
"""

from __future__ import annotations

from typing import Any

from . import formats
from .containers import PROTOCOLS, port_num_or_name
from .field import (
    Errors,
    GoJSON,
    as_dict,
    as_int,
    as_list,
    as_str,
    duplicate,
    forbidden,
    index,
    invalid,
    not_supported,
    required,
)
from .meta import name_is_dns1035_label, validate_labels, validate_object_meta, validate_object_meta_update

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
NODE_PORT_RANGE = (30000, 32767)


def _headless(spec: dict[str, Any]) -> bool:
    ips = as_list(spec.get("clusterIPs"))
    return (len(ips) == 1 and ips[0] == "None") or (not ips and spec.get("clusterIP") == "None")


def create(svc: dict[str, Any]) -> Errors:
    errs = validate_object_meta(svc, True, name_is_dns1035_label)
    spec = as_dict(svc.get("spec"))
    kind = spec.get("type")
    ports = [as_dict(p) for p in as_list(spec.get("ports"))]
    if not ports and not _headless(spec) and kind != "ExternalName":
        errs.append(required("spec.ports"))
    errs.extend(_type_rules(spec))
    names: set[str] = set()
    for i, port in enumerate(ports):
        errs.extend(_port(port, len(ports) > 1, names, index("spec.ports", i)))
    if spec.get("selector") is not None:
        errs.extend(validate_labels(spec.get("selector"), "spec.selector"))
    errs.extend(_session_affinity(spec))
    errs.extend(_cluster_ips(spec))
    for i, ip in enumerate(as_list(spec.get("externalIPs"))):
        errs.extend(invalid(index("spec.externalIPs", i), ip, m) for m in formats.is_valid_ip(as_str(ip)))
    if not kind:
        errs.append(required("spec.type"))
    elif kind not in SERVICE_TYPES:
        errs.append(not_supported("spec.type", kind, SERVICE_TYPES))
    errs.extend(_node_ports(kind, ports))
    errs.extend(_traffic_policies(spec))
    return errs


def _type_rules(spec: dict[str, Any]) -> Errors:
    kind, errs = spec.get("type"), []
    if kind in ("LoadBalancer", "NodePort") and _headless(spec):
        errs.append(invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services"))
    if kind == "ExternalName":
        for field in ("clusterIPs", "ipFamilies"):
            if as_list(spec.get(field)):
                errs.append(forbidden(f"spec.{field}", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = as_str(spec.get("externalName")).removesuffix(".")
        if not cname:
            errs.append(required("spec.externalName"))
        errs.extend(invalid("spec.externalName", cname, m) for m in (formats.is_dns1123_subdomain(cname) if cname else []))
    return errs


def _port(port: dict[str, Any], require_name: bool, names: set[str], path: str) -> Errors:
    errs: Errors = []
    name = as_str(port.get("name"))
    if require_name and not name:
        errs.append(required(f"{path}.name"))
    elif name:
        errs.extend(invalid(f"{path}.name", name, m) for m in formats.is_dns1123_label(name))
        if name in names:
            errs.append(duplicate(f"{path}.name", name))
        names.add(name)
    number = as_int(port.get("port")) or 0
    errs.extend(invalid(f"{path}.port", number, m) for m in formats.is_valid_port_num(number))
    protocol = port.get("protocol")
    if not protocol:
        errs.append(required(f"{path}.protocol"))
    elif protocol not in PROTOCOLS:
        errs.append(not_supported(f"{path}.protocol", protocol, PROTOCOLS))
    errs.extend(port_num_or_name(port.get("targetPort"), f"{path}.targetPort"))
    app_protocol = port.get("appProtocol")
    if isinstance(app_protocol, str):
        errs.extend(invalid(f"{path}.appProtocol", app_protocol, m) for m in formats.is_qualified_name(app_protocol))
    return errs


def _session_affinity(spec: dict[str, Any]) -> Errors:
    affinity = spec.get("sessionAffinity")
    if not affinity:
        return [required("spec.sessionAffinity")]
    if affinity not in ("ClientIP", "None"):
        return [not_supported("spec.sessionAffinity", affinity, ["ClientIP", "None"])]
    config = spec.get("sessionAffinityConfig")
    if affinity == "None" and config is not None:
        return [forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")]
    if affinity == "ClientIP":
        timeout = as_dict(as_dict(config).get("clientIP")).get("timeoutSeconds")
        if timeout is None:
            return [required("spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                             "when session affinity type is ClientIP")]
        if not 0 < (as_int(timeout) or 0) <= 86400:
            return [invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                            "must be greater than 0 and less than 86400")]
    return []


def _cluster_ips(spec: dict[str, Any]) -> Errors:
    if spec.get("type") == "ExternalName":
        return []
    errs: Errors = []
    cluster_ip, ips = as_str(spec.get("clusterIP")), as_list(spec.get("clusterIPs"))
    if cluster_ip and ips and ips[0] != cluster_ip:
        errs.append(invalid("spec.clusterIPs", ips, "first value must match `clusterIP`"))
    if not cluster_ip and ips:
        errs.append(invalid("spec.clusterIPs", ips, "must be empty when `clusterIP` is not specified"))
    families = as_list(spec.get("ipFamilies"))
    for i, family in enumerate(families):
        if family not in ("IPv4", "IPv6"):
            errs.append(not_supported(index("spec.ipFamilies", i), family, ["IPv4", "IPv6"]))
        if family in families[:i]:
            errs.append(duplicate(index("spec.ipFamilies", i), family))
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in ("PreferDualStack", "RequireDualStack", "SingleStack"):
        errs.append(not_supported("spec.ipFamilyPolicy", policy, ["PreferDualStack", "RequireDualStack",
                                                                   "SingleStack"]))
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                errs.append(invalid("spec.clusterIPs", ips, "'None' must be the first and only value"))
            continue
        errs.extend(invalid(index("spec.clusterIPs", i), ip, m) for m in formats.is_valid_ip(as_str(ip)))
    if len(ips) > 2:
        errs.append(invalid("spec.clusterIPs", ips, "may only hold up to 2 values"))
    return errs


def _node_ports(kind: Any, ports: list[dict[str, Any]]) -> Errors:
    errs: Errors = []
    seen_node: set[tuple[Any, int]] = set()
    seen_port: set[tuple[Any, int]] = set()
    low, high = NODE_PORT_RANGE
    for i, port in enumerate(ports):
        path = index("spec.ports", i)
        node_port = as_int(port.get("nodePort")) or 0
        if node_port and kind == "ClusterIP":
            errs.append(forbidden(f"{path}.nodePort", "may not be used when `type` is 'ClusterIP'"))
        elif node_port and not low <= node_port <= high:
            errs.append(invalid(f"{path}.nodePort", node_port, "provided port is not in the valid range. The range "
                                f"of valid ports is {low}-{high}"))
        if node_port:
            if (port.get("protocol"), node_port) in seen_node:
                errs.append(duplicate(f"{path}.nodePort", node_port))
            seen_node.add((port.get("protocol"), node_port))
        ident = (port.get("protocol"), as_int(port.get("port")) or 0)
        if ident in seen_port:
            errs.append(duplicate(path, GoJSON({"Name": "", "Protocol": ident[0] or "", "AppProtocol": None,
                                                "Port": ident[1], "TargetPort": 0, "NodePort": 0})))
        seen_port.add(ident)
    return errs


def _traffic_policies(spec: dict[str, Any]) -> Errors:
    errs: Errors = []
    kind = spec.get("type")
    external = kind in ("NodePort", "LoadBalancer") or bool(as_list(spec.get("externalIPs")))
    etp = spec.get("externalTrafficPolicy")
    if not external and etp:
        errs.append(invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"))
    elif external and not etp:
        errs.append(required("spec.externalTrafficPolicy"))
    elif external and etp not in ("Cluster", "Local"):
        errs.append(not_supported("spec.externalTrafficPolicy", etp, ["Cluster", "Local"]))
    itp = spec.get("internalTrafficPolicy")
    if itp is None and kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        errs.append(required("spec.internalTrafficPolicy"))
    elif itp is not None and itp not in ("Cluster", "Local"):
        errs.append(not_supported("spec.internalTrafficPolicy", itp, ["Cluster", "Local"]))
    if spec.get("allocateLoadBalancerNodePorts") is not None and kind != "LoadBalancer":
        errs.append(forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"))
    if as_list(spec.get("loadBalancerSourceRanges")) and kind != "LoadBalancer":
        errs.append(forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"))
    return errs


def update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = validate_object_meta_update(new, old)
    new_spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    errs.extend(_cluster_ip_changes(new_spec, old_spec))
    # Kubernetes re-runs the whole create validation (metadata included) on the new object.
    return errs + create(new)


def _cluster_ip_changes(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    if "ExternalName" in (new.get("type"), old.get("type")) or (_headless(new) and _headless(old)):
        return []
    new_ips, old_ips = as_list(new.get("clusterIPs")), as_list(old.get("clusterIPs"))
    if len(new_ips) == len(old_ips):
        return [invalid(index("spec.clusterIPs", i), new_ips, "may not change once set")
                for i, ip in enumerate(old_ips) if ip != new_ips[i]]
    if len(new_ips) < len(old_ips):
        if not new_ips:
            return [invalid("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset")]
        if new_ips[0] != old_ips[0]:
            return [invalid("spec.clusterIPs[0]", new_ips, "may not change once set")]
        return []
    if old_ips and new_ips[0] != old_ips[0]:
        return [invalid("spec.clusterIPs[0]", new_ips, "may not change once set")]
    return []
