"""Service and EndpointSlice builders for the proxy tests."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


def service(name: str, cluster_ip: str = "10.43.0.10", *, ports: list[JSON] | None = None, namespace: str = "default",
            rv: str = "1", **spec: Any) -> JSON:
    body: JSON = {"clusterIP": cluster_ip, "ports": ports if ports is not None else [{"port": 80, "protocol": "TCP"}]}
    body.update(spec)
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": rv}, "spec": body}


def endpoint(ip: str, node: str = "n1", *, ready: bool | None = True, serving: bool | None = None,
             terminating: bool | None = None) -> JSON:
    cond: JSON = {}
    if ready is not None:
        cond["ready"] = ready
    if serving is not None:
        cond["serving"] = serving
    if terminating is not None:
        cond["terminating"] = terminating
    return {"addresses": [ip], "conditions": cond, "nodeName": node}


def slice_(svc: str, endpoints: list[JSON], *, port: int = 8080, port_name: str = "", protocol: str = "TCP",
           name: str = "", namespace: str = "default", rv: str = "1", address_type: str = "IPv4") -> JSON:
    return {"metadata": {"name": name or f"{svc}-abc", "namespace": namespace, "resourceVersion": rv,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": address_type, "endpoints": endpoints,
            "ports": [{"name": port_name, "protocol": protocol, "port": port}]}
