"""Printers for the core/v1 kinds other than Pod, Event and the volume kinds.

Nodes, Services, Endpoints, Namespaces, Secrets, ConfigMaps, ServiceAccounts, ReplicationControllers and
ResourceQuotas, with the columns and cell rules of ``printers.go``: node STATUS from the Ready condition plus
``SchedulingDisabled``, ROLES from ``node-role.kubernetes.io/*`` labels, a Service's EXTERNAL-IP by type
(``<pending>`` for a LoadBalancer with no ingress yet) and PORT(S) as ``80/TCP,443:30001/TCP``, Endpoints as the
first three ``ip:port`` pairs and ``+ N more...``. Counts are integers, everything else strings, as kube sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nanokube.api.tables.common import (
    AGE,
    CONTAINERS,
    IMAGES,
    JSON,
    NAME,
    NONE,
    UNKNOWN,
    Column,
    Context,
    Printer,
    age,
    container_cells,
    dig,
    format_labels,
    items,
    mapping,
    name_of,
    number,
    quantity_text,
    text,
    wide,
)

_CORE = "io.k8s.api.core.v1."
ROLE_PREFIX = "node-role.kubernetes.io/"
ROLE_LABEL = "kubernetes.io/role"


# -- Node ------------------------------------------------------------------------------------------------

def node_roles(node: JSON) -> str:
    roles: set[str] = set()
    for key, value in mapping(node, "metadata", "labels").items():
        if key.startswith(ROLE_PREFIX) and key[len(ROLE_PREFIX):]:
            roles.add(key[len(ROLE_PREFIX):])
        elif key == ROLE_LABEL and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or NONE


def node_status(node: JSON) -> str:
    ready: Mapping[str, Any] | None = None
    for cond in items(node, "status", "conditions"):
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            ready = cond  # the last one wins, as in Go's condition map
    status = ["Unknown"] if ready is None else ["Ready" if ready.get("status") == "True" else "NotReady"]
    if dig(node, "spec", "unschedulable") is True:
        status.append("SchedulingDisabled")
    return ",".join(status)


def _node_address(node: JSON, kind: str) -> str:
    for address in items(node, "status", "addresses"):
        if isinstance(address, Mapping) and address.get("type") == kind:
            return text(address, "address")
    return NONE


def _node_cells(node: JSON, ctx: Context) -> list[Any]:
    info = mapping(node, "status", "nodeInfo")
    return [
        name_of(node), node_status(node), node_roles(node), age(node, ctx), text(info, "kubeletVersion"),
        _node_address(node, "InternalIP"), _node_address(node, "ExternalIP"),
        text(info, "osImage") or UNKNOWN, text(info, "kernelVersion") or UNKNOWN,
        text(info, "containerRuntimeVersion") or UNKNOWN,
    ]


NODE = Printer((
    NAME,
    Column("Status", doc="The status of the node"),
    Column("Roles", doc="The roles of the node"),
    AGE,
    Column("Version", doc=(_CORE + "NodeSystemInfo", "kubeletVersion")),
    wide("Internal-IP", (_CORE + "NodeStatus", "addresses")),
    wide("External-IP", (_CORE + "NodeStatus", "addresses")),
    wide("OS-Image", (_CORE + "NodeSystemInfo", "osImage")),
    wide("Kernel-Version", (_CORE + "NodeSystemInfo", "kernelVersion")),
    wide("Container-Runtime", (_CORE + "NodeSystemInfo", "containerRuntimeVersion")),
), _node_cells)


# -- Service ---------------------------------------------------------------------------------------------

def _load_balancer_ips(svc: JSON) -> list[str]:
    found: set[str] = set()
    for ingress in items(svc, "status", "loadBalancer", "ingress"):
        value = text(ingress, "ip") or text(ingress, "hostname")
        if value:
            found.add(value)
    return sorted(found)


def service_external_ip(svc: JSON) -> str:
    """EXTERNAL-IP as the server prints it (wide: load balancer addresses are never clipped)."""
    kind = text(svc, "spec", "type")
    external = [str(ip) for ip in items(svc, "spec", "externalIPs")]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or NONE
    if kind == "LoadBalancer":
        balancers = _load_balancer_ips(svc)
        if external:
            return ",".join(balancers + external)
        return ",".join(balancers) or "<pending>"
    if kind == "ExternalName":
        return text(svc, "spec", "externalName")
    return UNKNOWN


def service_ports(svc: JSON) -> str:
    pieces = []
    for port in items(svc, "spec", "ports"):
        protocol = text(port, "protocol") or "TCP"
        node_port = number(port, "nodePort")
        if node_port > 0:
            pieces.append(f"{number(port, 'port')}:{node_port}/{protocol}")
        else:
            pieces.append(f"{number(port, 'port')}/{protocol}")
    return ",".join(pieces) or NONE


def _service_cells(svc: JSON, ctx: Context) -> list[Any]:
    cluster_ips = items(svc, "spec", "clusterIPs")
    cluster_ip = (cluster_ips[0] if cluster_ips else text(svc, "spec", "clusterIP")) or NONE
    return [name_of(svc), text(svc, "spec", "type"), cluster_ip, service_external_ip(svc), service_ports(svc),
            age(svc, ctx), format_labels(dig(svc, "spec", "selector"))]


SERVICE = Printer((
    NAME,
    Column("Type", doc=(_CORE + "ServiceSpec", "type")),
    Column("Cluster-IP", doc=(_CORE + "ServiceSpec", "clusterIP")),
    Column("External-IP", doc=(_CORE + "ServiceSpec", "externalIPs")),
    Column("Port(s)", doc=(_CORE + "ServiceSpec", "ports")),
    AGE,
    wide("Selector", (_CORE + "ServiceSpec", "selector")),
), _service_cells)


# -- Endpoints -------------------------------------------------------------------------------------------

def format_endpoints(endpoints: JSON, limit: int = 3) -> str:
    """``formatEndpoints``: up to three ``ip:port`` (or bare ip for port-less subsets), then ``+ N more...``."""
    subsets = items(endpoints, "subsets")
    if not subsets:
        return NONE
    shown: list[str] = []
    more = False
    count = 0
    for subset in subsets:
        addresses = [text(a, "ip") for a in items(subset, "addresses")]
        ports = items(subset, "ports") or [None]
        for port in ports:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(ip if port is None else _join_host_port(ip, number(port, "port")))
    joined = ",".join(shown)
    return f"{joined} + {count - limit} more..." if more else joined


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


ENDPOINTS = Printer((
    NAME,
    Column("Endpoints", doc=(_CORE + "Endpoints", "subsets")),
    AGE,
), lambda obj, ctx: [name_of(obj), format_endpoints(obj), age(obj, ctx)])


# -- small kinds -----------------------------------------------------------------------------------------

NAMESPACE = Printer((
    NAME, Column("Status", doc="The status of the namespace"), AGE,
), lambda obj, ctx: [name_of(obj), text(obj, "status", "phase"), age(obj, ctx)])

SECRET = Printer((
    NAME,
    Column("Type", doc=(_CORE + "Secret", "type")),
    Column("Data", doc=(_CORE + "Secret", "data")),
    AGE,
), lambda obj, ctx: [name_of(obj), text(obj, "type"), len(mapping(obj, "data")), age(obj, ctx)])

CONFIG_MAP = Printer((
    NAME, Column("Data", doc=(_CORE + "ConfigMap", "data")), AGE,
), lambda obj, ctx: [name_of(obj), len(mapping(obj, "data")) + len(mapping(obj, "binaryData")), age(obj, ctx)])

SERVICE_ACCOUNT = Printer((
    NAME, Column("Secrets", doc=(_CORE + "ServiceAccount", "secrets")), AGE,
), lambda obj, ctx: [name_of(obj), len(items(obj, "secrets")), age(obj, ctx)])


# -- ReplicationController -------------------------------------------------------------------------------

def _rc_cells(rc: JSON, ctx: Context) -> list[Any]:
    return [name_of(rc), number(rc, "spec", "replicas"), number(rc, "status", "replicas"),
            number(rc, "status", "readyReplicas"), age(rc, ctx),
            *container_cells(items(rc, "spec", "template", "spec", "containers")),
            format_labels(dig(rc, "spec", "selector"))]


REPLICATION_CONTROLLER = Printer((
    NAME,
    Column("Desired", "integer", (_CORE + "ReplicationControllerSpec", "replicas")),
    Column("Current", "integer", (_CORE + "ReplicationControllerStatus", "replicas")),
    Column("Ready", "integer", (_CORE + "ReplicationControllerStatus", "readyReplicas")),
    AGE, CONTAINERS, IMAGES,
    wide("Selector", (_CORE + "ReplicationControllerSpec", "selector")),
), _rc_cells)


# -- ResourceQuota ---------------------------------------------------------------------------------------

def quota_columns(quota: JSON) -> tuple[str, str]:
    """REQUEST and LIMIT: ``name: used/hard`` for every hard limit, ``limits.*`` names in the second column."""
    hard = mapping(quota, "status", "hard")
    used = mapping(quota, "status", "used")
    requests: list[str] = []
    limits: list[str] = []
    for resource in sorted(hard):
        target = limits if resource.split(".")[0] == "limits" and "." in resource else requests
        target.append(f"{resource}: {quantity_text(used.get(resource))}/{quantity_text(hard[resource])}")
    return ", ".join(requests), ", ".join(limits)


RESOURCE_QUOTA = Printer((
    NAME,
    Column("Request", doc="Request represents a minimum amount of cpu/memory that a container may consume."),
    Column("Limit", doc="Limits control the maximum amount of cpu/memory that a container may use independent "
                        "of contention on the node."),
    AGE,
), lambda obj, ctx: [name_of(obj), *quota_columns(obj), age(obj, ctx)])
