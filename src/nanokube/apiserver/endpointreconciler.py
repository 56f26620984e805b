"""The ``default/kubernetes`` Endpoints and EndpointSlice: where Pods reach the API server.

kube-apiserver's endpoint reconciler keeps both pointing at the servers' advertise addresses and secure port;
this one does it for the one server at start (and again when it starts somewhere else). The Endpoints carry
``endpointslice.kubernetes.io/skip-mirror: "true"`` and the slice has no ``managed-by`` label, as kube's do,
so neither the endpoints controller nor the mirroring controller touches them.

``listen_socket`` makes the extra listening socket for that address with ``IP_FREEBIND``, so the server can
bind the node's pod-bridge gateway before the node has made the bridge.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from nanokube.api.errors import AlreadyExists, NotFound

from .storage import ObjectStorage

JSON = dict[str, Any]
NAME = "kubernetes"
NAMESPACE = "default"
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


def endpoints_body(address: str, port: int) -> JSON:
    return {"metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {SKIP_MIRROR: "true"}},
            "subsets": [{"addresses": [{"ip": address}],
                         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}


def slice_body(address: str, port: int) -> JSON:
    family = "IPv6" if ipaddress.ip_address(address).version == 6 else "IPv4"
    return {"metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"kubernetes.io/service-name": NAME}},
            "addressType": family,
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}


async def reconcile(storage: ObjectStorage, address: str, port: int) -> None:
    """Make ``default/kubernetes`` Endpoints and EndpointSlice name ``address:port`` (written only if they
    say something else)."""
    targets = (("", "v1", "endpoints", endpoints_body(address, port), ("subsets",)),
               ("discovery.k8s.io", "v1", "endpointslices", slice_body(address, port),
                ("addressType", "endpoints", "ports")))
    for group, version, plural, body, fields in targets:
        resource = storage.registry.get(group, version, plural)
        assert resource is not None
        try:
            live = await storage.get(resource, NAMESPACE, NAME)
        except NotFound:
            try:
                await storage.create(resource, NAMESPACE, body)
            except AlreadyExists:
                pass
            continue
        labels = live["metadata"].get("labels") or {}
        if all(live.get(f) == body[f] for f in fields) and body["metadata"]["labels"].items() <= labels.items():
            continue

        def mutate(current: JSON | None, body: JSON = body, fields: tuple[str, ...] = fields) -> JSON:
            assert current is not None
            for f in fields:
                current[f] = body[f]
            current["metadata"].setdefault("labels", {}).update(body["metadata"]["labels"])
            return current

        await storage.update(resource, NAMESPACE, NAME, mutate)


def endpoint_address(host: str, service_endpoint: str) -> str:
    """The address to publish: the one asked for, else the listening host when it is a single IP; "" if none."""
    if service_endpoint:
        return service_endpoint
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return ""
    return "" if ip.is_unspecified else host


def listen_socket(address: str, port: int) -> socket.socket:
    """A listening TCP socket on ``address:port`` that may bind before the address exists on this machine."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
        sock.bind((address, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
