"""pods/log, pods/exec, pods/attach and pods/portforward: validated here, served by the Pod's kubelet.

``StreamingProxy.handle`` is ``Subresources.streaming``. It does what kube-apiserver's pod REST does before it
proxies (``pkg/registry/core/pod/strategy.go``: LogLocation, ExecLocation, AttachLocation,
PortForwardLocation): read the Pod, default and check the container name with kube's words, validate the
log options, find the node's kubelet, and build the kubelet URL with the options translated to the kubelet's
query (``stdin=1``..., ``port=`` from ``ports=``). Then ``relay`` carries the stream.

Where a kubelet listens: ``status.daemonEndpoints.kubeletEndpoint.Port`` of the Node, at the host named by
the Node annotation ``nanokube.io/kubelet-address`` if present (simulated nodes, whose addresses are made
up), else its first address of the types in ``StreamingSettings.address_types``. The API server talks to
kubelets over plain HTTP with a bearer token shared by both (``kubelet_token``), a deliberate simplification
of kube's TLS client certificates.

kubectl's SPDY fallback (``Upgrade: SPDY/3.1``, after a failed WebSocket upgrade) gets the kubelet's own
error when there is one, and otherwise a 400 saying WebSockets are required; plain requests without an
upgrade get kube's ``Upgrade request required``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from nanokube.api.errors import BadRequest, FieldError, InternalError, Invalid
from nanokube.api.registry import Registry, Resource

from ..requestinfo import RequestInfo
from ..storage import ObjectStorage
from .relay import UPGRADE_REQUIRED, precheck, relay_logs, relay_websocket

JSON = dict[str, Any]
KUBELET_ADDRESS_ANNOTATION = "nanokube.io/kubelet-address"  # also defined by kubelet.server, which sets it
_LOG_NUMBERS = ("tailLines", "sinceSeconds", "limitBytes")


@dataclass
class StreamingSettings:
    kubelet_token: str = ""  # sent as "Authorization: Bearer <token>" to every kubelet; empty: none
    address_types: tuple[str, ...] = ("InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS")
    connect_timeout: float = 10.0
    default_port: int = 10250


def parse_bool(value: str | None) -> bool:
    """A query boolean as Go's strconv.ParseBool reads it (kube's parameter codec)."""
    if value is None:
        return False
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False", ""):
        return False
    raise BadRequest(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def container_names(pod: JSON) -> list[str]:
    """Every container of the Pod, init containers first (kube's VisitContainers order)."""
    spec = pod.get("spec") or {}
    return [c.get("name", "") for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or []]


def validate_container(pod: JSON, container: str) -> str:
    """The container a request names, or the Pod's only one; BadRequest in kube's words otherwise."""
    name = pod["metadata"]["name"]
    if container:
        if container not in container_names(pod):
            raise BadRequest(f"container {container} is not valid for pod {name}")
        return container
    regular = (pod.get("spec") or {}).get("containers") or []
    if len(regular) == 1:
        return str(regular[0].get("name", ""))
    if not regular:
        raise BadRequest(f"a container name must be specified for pod {name}")
    raise BadRequest(f"a container name must be specified for pod {name}, choose one of: "
                     f"[{' '.join(container_names(pod))}]")


def log_query(name: str, query: Mapping[str, str]) -> dict[str, str]:
    """The kubelet query for a log request; Invalid (PodLogOptions) as kube's ValidatePodLogOptions says."""
    out: dict[str, str] = {}
    causes: list[FieldError] = []
    for key in ("follow", "previous", "timestamps"):
        if parse_bool(query.get(key)):
            out[key] = "true"
    for key in _LOG_NUMBERS:
        if key not in query:
            continue
        try:
            value = int(query[key])
        except ValueError as err:
            raise BadRequest(f'strconv.ParseInt: parsing "{query[key]}": invalid syntax') from err
        minimum = 0 if key == "tailLines" else 1
        if value < minimum:
            detail = "must be greater than or equal to 0" if minimum == 0 else "must be greater than 0"
            causes.append(FieldError.invalid(key, value, detail))
        out[key] = str(value)
    if query.get("sinceTime"):
        out["sinceTime"] = query["sinceTime"]
        if "sinceSeconds" in query:
            causes.append(FieldError.forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
    if causes:
        raise Invalid("PodLogOptions", "", name, causes)
    return out


def stream_query(subresource: str, query: Any) -> list[tuple[str, str]]:
    """The kubelet query for exec/attach (flags as "1", one ``command`` per argv word) or portforward."""
    if subresource == "portforward":
        ports = [p for value in query.getall("ports", []) for p in value.split(",") if p]
        for port in ports:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise BadRequest(f'unable to parse "{port}" as a port')
        return [("port", ",".join(ports))] if ports else []
    out = [(key, "1") for key in ("stdin", "stdout", "stderr", "tty") if parse_bool(query.get(key))]
    if subresource == "exec":
        out += [("command", word) for word in query.getall("command", [])]
    return out


class StreamingProxy:
    def __init__(self, storage: ObjectStorage, registry: Registry, settings: StreamingSettings | None = None
                 ) -> None:
        self.storage = storage
        self.registry = registry
        self.settings = settings or StreamingSettings()
        nodes = registry.get("", "v1", "nodes")
        assert nodes is not None
        self.nodes = nodes

    def _session(self) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.connect_timeout)
        return aiohttp.ClientSession(timeout=timeout)

    def _headers(self) -> dict[str, str]:
        token = self.settings.kubelet_token
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def kubelet_base(self, node_name: str) -> str:
        """``http://host:port`` of a node's kubelet server."""
        node = await self.storage.get(self.nodes, "", node_name)
        status = node.get("status") or {}
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") \
            or self.settings.default_port
        host = ((node["metadata"].get("annotations") or {}).get(KUBELET_ADDRESS_ANNOTATION) or "")
        if not host:
            addresses = status.get("addresses") or []
            host = next((a["address"] for kind in self.settings.address_types for a in addresses
                         if a.get("type") == kind and a.get("address")), "")
        if not host:
            known = ", ".join(f"{a.get('type')}={a.get('address')}" for a in status.get("addresses") or [])
            raise InternalError(f"Internal error occurred: no preferred addresses found; known addresses: "
                                f"[{known}]")
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    async def handle(self, request: web.Request, resource: Resource, info: RequestInfo) -> web.StreamResponse:
        sub = info.subresource
        if resource.group or resource.plural != "pods" or sub not in ("log", "exec", "attach", "portforward"):
            raise BadRequest(f"the {sub} subresource of {resource.plural} is not served by nanokube")
        pod = await self.storage.get(resource, info.namespace, info.name)
        if sub == "log":
            return await self._log(request, pod)
        return await self._stream(request, pod, sub)

    async def _log(self, request: web.Request, pod: JSON) -> web.StreamResponse:
        name = pod["metadata"]["name"]
        query = log_query(name, request.query)
        container = validate_container(pod, request.query.get("container", ""))
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            # kube: no location yet, an empty log.
            return web.Response(body=b"", content_type="text/plain")
        url = (f"{await self.kubelet_base(node)}/containerLogs/{quote(pod['metadata']['namespace'])}/"
               f"{quote(name)}/{quote(container)}")
        if query:
            url += "?" + urlencode(query)
        async with self._session() as session:
            return await relay_logs(request, session, url, self._headers(), name)

    async def _stream(self, request: web.Request, pod: JSON, sub: str) -> web.StreamResponse:
        name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        path = f"/portForward/{quote(namespace)}/{quote(name)}"
        if sub != "portforward":
            container = validate_container(pod, request.query.get("container", ""))
            path = f"/{sub}/{quote(namespace)}/{quote(name)}/{quote(container)}"
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            raise BadRequest(f"pod {name} does not have a host assigned")
        query = stream_query(sub, request.query)
        url = f"{await self.kubelet_base(node)}{path}" + (f"?{urlencode(query)}" if query else "")
        upgrade = request.headers.get("Upgrade", "").lower()
        if not upgrade:
            raise BadRequest(UPGRADE_REQUIRED)
        async with self._session() as session:
            if upgrade == "websocket":
                return await relay_websocket(request, session, url, self._headers())
            refused = await precheck(session, url, self._headers())
        if refused is not None:
            return refused
        raise BadRequest(f"unable to upgrade connection: nanokube serves {sub} over WebSocket only "
                         f"(Upgrade: {request.headers.get('Upgrade')} is not supported)")
