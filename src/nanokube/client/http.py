"""The HTTP client: the ``Client`` contract over the Kubernetes REST API, for components on other machines
(``nanokube agent``) and for the command line.

Same errors as the in-process client: a Status body from the server becomes the matching ``ApiError``
subclass. Watches stream newline-delimited events and end with ``Expired`` on a 410.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import yaml

from nanokube.api import errors
from nanokube.api.registry import Registry, Resource

from .interface import JSON, ObjectList, PatchType, WatchEvent

_PATCH_TYPES = {"merge": "application/merge-patch+json", "strategic": "application/strategic-merge-patch+json",
                "json": "application/json-patch+json"}
_BY_REASON: dict[str, type[errors.ApiError]] = {
    cls.reason: cls for cls in (errors.BadRequest, errors.Unauthorized, errors.Forbidden, errors.NotFound,
                                errors.MethodNotAllowed, errors.AlreadyExists, errors.Conflict, errors.Expired,
                                errors.Gone, errors.UnsupportedMediaType, errors.TooManyRequests,
                                errors.InternalError, errors.Timeout)}


def error_from_status(code: int, body: bytes) -> errors.ApiError:
    try:
        status = orjson.loads(body)
    except orjson.JSONDecodeError:
        status = {"message": body.decode(errors="replace") or f"HTTP {code}"}
    reason = status.get("reason", "")
    if code == 422:
        return errors.Invalid.from_status(status.get("message", ""), status.get("details"))
    cls = _BY_REASON.get(reason)
    if cls is None or (cls.code != code and reason not in ("Expired", "Gone")):
        cls = {400: errors.BadRequest, 401: errors.Unauthorized, 403: errors.Forbidden, 404: errors.NotFound,
               409: errors.Conflict, 410: errors.Expired, 429: errors.TooManyRequests}.get(code, errors.InternalError)
    return cls(status.get("message", ""), details=status.get("details"))


class HttpClient:
    def __init__(self, server: str, *, token: str = "", ca_file: str | None = None,
                 registry: Registry | None = None) -> None:
        self.server = server.rstrip("/")
        self.registry = registry or Registry()
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._ssl: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | Path) -> HttpClient:
        """The current context of a kubeconfig (bearer token and CA data, as ``nanokube up`` writes them)."""
        config = yaml.safe_load(Path(path).read_text())
        context_name = config.get("current-context")
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user: JSON = next((u["user"] for u in config.get("users") or [] if u["name"] == context.get("user")), {})
        ca_file = None
        if cluster.get("certificate-authority-data"):
            with tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False) as f:
                f.write(base64.b64decode(cluster["certificate-authority-data"]))
                ca_file = f.name
        elif cluster.get("certificate-authority"):
            ca_file = cluster["certificate-authority"]
        return cls(cluster["server"], token=user.get("token", ""), ca_file=ca_file)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers,
                                                  connector=aiohttp.TCPConnector(ssl=self._ssl, limit=64))
        return self._session

    def _path(self, resource: Resource, namespace: str = "", name: str = "", subresource: str = "") -> str:
        base = f"/api/{resource.version}" if not resource.group else f"/apis/{resource.group}/{resource.version}"
        if resource.namespaced and namespace:
            base += f"/namespaces/{quote(namespace)}"
        base += f"/{resource.plural}"
        if name:
            base += f"/{quote(name)}"
        if subresource:
            base += f"/{subresource}"
        return base

    async def _request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                       body: Any = None, content_type: str = "application/json") -> Any:
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else None
        async with self._sess().request(method, self.server + path, params=params, data=data,
                                        headers=headers) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise error_from_status(resp.status, raw)
            return orjson.loads(raw) if raw else None

    async def get(self, resource: Resource, namespace: str, name: str) -> JSON:
        result: JSON = await self._request("GET", self._path(resource, namespace, name))
        return result

    async def list(self, resource: Resource, namespace: str = "", *, label_selector: str = "",
                   field_selector: str = "") -> ObjectList:
        params = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v}
        body = await self._request("GET", self._path(resource, namespace), params=params)
        return ObjectList(body.get("items") or [], body["metadata"].get("resourceVersion", ""))

    async def watch(self, resource: Resource, namespace: str = "", *, resource_version: str = "",
                    label_selector: str = "", field_selector: str = "") -> AsyncIterator[WatchEvent]:
        params = {"watch": "true", "allowWatchBookmarks": "true"}
        for key, value in (("resourceVersion", resource_version), ("labelSelector", label_selector),
                           ("fieldSelector", field_selector)):
            if value:
                params[key] = value
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self._sess().get(self.server + self._path(resource, namespace), params=params,
                                    timeout=timeout) as resp:
            if resp.status >= 400:
                raise error_from_status(resp.status, await resp.read())
            async for raw in resp.content:
                if not raw.strip():
                    continue
                event = orjson.loads(raw)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    raise error_from_status(int(obj.get("code") or 500), orjson.dumps(obj))
                revision = int((obj.get("metadata") or {}).get("resourceVersion") or 0)
                yield WatchEvent(event["type"], obj, revision)

    async def create(self, resource: Resource, namespace: str, obj: JSON) -> JSON:
        result: JSON = await self._request("POST", self._path(resource, namespace), body=obj)
        return result

    async def update(self, resource: Resource, namespace: str, obj: JSON, *, subresource: str = "") -> JSON:
        path = self._path(resource, namespace, obj["metadata"]["name"], subresource)
        result: JSON = await self._request("PUT", path, body=obj)
        return result

    async def patch(self, resource: Resource, namespace: str, name: str, patch: Any, *,
                    patch_type: PatchType = "merge", subresource: str = "") -> JSON:
        result: JSON = await self._request("PATCH", self._path(resource, namespace, name, subresource), body=patch,
                                           content_type=_PATCH_TYPES[patch_type])
        return result

    async def delete(self, resource: Resource, namespace: str, name: str, *, propagation: str | None = None,
                     grace_period_seconds: int | None = None, uid: str | None = None,
                     resource_version: str | None = None) -> JSON:
        options: JSON = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            options["propagationPolicy"] = propagation
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        pre = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if pre:
            options["preconditions"] = pre
        result: JSON = await self._request("DELETE", self._path(resource, namespace, name), body=options)
        return result

    async def bind(self, namespace: str, name: str, node: str) -> None:
        pods = self.registry.get("", "v1", "pods")
        assert pods is not None
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        await self._request("POST", self._path(pods, namespace, name, "binding"), body=body)

    async def evict(self, namespace: str, name: str, *, grace_period_seconds: int | None = None) -> None:
        pods = self.registry.get("", "v1", "pods")
        assert pods is not None
        options = {} if grace_period_seconds is None else {"gracePeriodSeconds": grace_period_seconds}
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace},
                "deleteOptions": options}
        await self._request("POST", self._path(pods, namespace, name, "eviction"), body=body)

    async def request_token(self, namespace: str, account: str, request: JSON) -> JSON:
        accounts = self.registry.get("", "v1", "serviceaccounts")
        assert accounts is not None
        answer: JSON = await self._request("POST", self._path(accounts, namespace, account, "token"), body=request)
        return answer
