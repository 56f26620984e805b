"""Subresources: status, scale, binding, eviction, finalize, and the review kinds that are answered, not stored.

Each is a thin translation onto ``ObjectStorage`` writes of the parent object, with kube's wording for the
failures kubectl and controllers branch on (an already-bound pod, an eviction a disruption budget blocks).
Streaming subresources (log, exec, attach, port-forward) belong to the node; until a node serves them they
answer 400 with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from nanokube.api.errors import (
    BadRequest,
    Conflict,
    MethodNotAllowed,
    NotFound,
)
from nanokube.api.labels import selector_from_label_selector
from nanokube.api.objects import deep_copy
from nanokube.api.registry import Registry, Resource

from .eviction import Eviction
from .negotiation import decode_body
from .requestinfo import RequestInfo
from .storage import ObjectStorage

if TYPE_CHECKING:
    from .handlers import RestHandler

JSON = dict[str, Any]


class Subresources:
    def __init__(self, storage: ObjectStorage, registry: Registry) -> None:
        self.storage = storage
        self.registry = registry
        self.rest: RestHandler | None = None  # set by RestHandler's owner for patch reuse
        # Printer columns of custom resources, keyed (group, version, plural); kept by the CRD controller.
        self.printer_columns: dict[tuple[str, str, str], list[JSON]] = {}
        self.eviction = Eviction(storage, registry)
        # Streaming subresources (log, exec, attach, portforward) are delegated when a node proxy is set.
        self.streaming: Any = None
        # serviceaccounts/token: the API server's ServiceAccountTokens (tokenrequest.py), set by its owner.
        self.tokens: Any = None

    def custom_columns(self, resource: Resource) -> list[JSON] | None:
        return self.printer_columns.get((resource.group, resource.version, resource.plural))

    def prune(self, resource: Resource, obj: JSON) -> JSON:
        return self.storage.prune(resource, obj)

    async def handle(self, request: web.Request, resource: Resource, info: RequestInfo) -> web.StreamResponse:
        from .handlers import json_response

        sub = resource.subresource(info.subresource)
        if sub is None:
            raise NotFound.path()
        method = request.method
        name = info.subresource
        if name == "status":
            if method == "GET":
                return json_response(await self.storage.get(resource, info.namespace, info.name))
            if method == "PUT":
                return await self._put_status(request, resource, info)
            if method == "PATCH":
                assert self.rest is not None
                return await self.rest.patch(request, resource, info, subresource="status")
        elif name == "scale":
            return await self._scale(request, resource, info)
        elif name == "binding" and method == "POST":
            body = decode_body(await request.read(), request.headers.get("Content-Type")) or {}
            return json_response(await self.bind(info.namespace, info.name, body), status=201)
        elif name == "eviction" and method == "POST":
            body = decode_body(await request.read(), request.headers.get("Content-Type")) or {}
            return json_response(await self.evict(info.namespace, info.name, body), status=201)
        elif name == "token" and method == "POST" and self.tokens is not None:
            body = decode_body(await request.read(), request.headers.get("Content-Type")) or {}
            return json_response(await self.tokens.request(info.namespace, info.name, body), status=201)
        elif name == "finalize" and method == "PUT":
            body = decode_body(await request.read(), request.headers.get("Content-Type")) or {}
            return json_response(await self.finalize(info.name, body))
        elif name in ("log", "exec", "attach", "portforward", "proxy"):
            if self.streaming is not None:
                response: web.StreamResponse = await self.streaming.handle(request, resource, info)
                return response
            pod = await self.storage.get(resource, info.namespace, info.name)
            node = (pod.get("spec") or {}).get("nodeName")
            if not node:
                raise BadRequest(f'pod {info.name} does not have a host assigned')
            raise BadRequest(f'no node agent is serving pod {info.name} on node "{node}"')
        raise MethodNotAllowed.verb(method.lower(), f"{resource.plural}/{name}")

    async def _put_status(self, request: web.Request, resource: Resource, info: RequestInfo) -> web.StreamResponse:
        from .handlers import json_response

        obj = decode_body(await request.read(), request.headers.get("Content-Type"))
        if not isinstance(obj, dict):
            raise BadRequest("the body of the request must be an object")
        wanted_rv = (obj.get("metadata") or {}).get("resourceVersion") or ""

        def mutate(live: JSON | None) -> JSON:
            if live is not None and wanted_rv and wanted_rv != live["metadata"].get("resourceVersion"):
                raise Conflict.modified(resource.plural, resource.group, info.name)
            return obj

        from .handlers import field_manager

        result = await self.storage.update(resource, info.namespace, info.name, mutate, subresource="status",
                                           dry_run="dryRun" in request.query, manager=field_manager(request))
        return json_response(result.obj)

    # -- scale -------------------------------------------------------------------------------------------
    @staticmethod
    def scale_of(obj: JSON, resource: Resource | None = None) -> JSON:
        """The autoscaling/v1 Scale view of a workload; custom resources read their CRD's scale paths."""
        meta = obj["metadata"]
        paths = (resource.scale_paths if resource is not None else None) or {}
        if paths:
            spec_replicas = _at(obj, paths.get("specReplicasPath", ".spec.replicas")) or 0
            status_replicas = _at(obj, paths.get("statusReplicasPath", ".status.replicas")) or 0
            text = _at(obj, paths["labelSelectorPath"]) if paths.get("labelSelectorPath") else None
            status: JSON = {"replicas": status_replicas}
            if isinstance(text, str) and text:
                status["selector"] = text
        else:
            selector = (obj.get("spec") or {}).get("selector")
            if obj.get("kind") == "ReplicationController":
                text = ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items()))
            else:
                try:
                    text = str(selector_from_label_selector(selector or {}))
                except ValueError:
                    text = ""
            spec_replicas = (obj.get("spec") or {}).get("replicas", 0)
            status = {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": text}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": spec_replicas},
            "status": status,
        }

    async def _scale(self, request: web.Request, resource: Resource, info: RequestInfo) -> web.StreamResponse:
        from .handlers import json_response

        if request.method == "GET":
            return json_response(self.scale_of(await self.storage.get(resource, info.namespace, info.name),
                                               resource))
        if request.method not in ("PUT", "PATCH"):
            raise MethodNotAllowed.verb(request.method.lower(), f"{resource.plural}/scale")
        assert self.rest is not None
        scale_resource = self.registry.get("autoscaling", "v1", "scale") or Resource(
            "autoscaling", "v1", "scale", "Scale", True, definition="io.k8s.api.autoscaling.v1.Scale")
        if request.method == "PUT":
            body = decode_body(await request.read(), request.headers.get("Content-Type"))
            if not isinstance(body, dict):
                raise BadRequest("the body of the request must be a Scale object")

            def scale_mutate(current: JSON) -> JSON:
                return body
        else:
            from .negotiation import body_media_type, decode_patch_body

            media = body_media_type(request.headers.get("Content-Type"))
            patch_body = decode_patch_body(await request.read(), media)
            patcher = self.rest.patcher(request, scale_resource, info, media, patch_body, [])

            def scale_mutate(current: JSON) -> JSON:
                return patcher(current)

        def mutate(live: JSON | None) -> JSON:
            assert live is not None
            current = self.scale_of(live, resource)
            wanted = scale_mutate(deep_copy(current))
            wanted_rv = (wanted.get("metadata") or {}).get("resourceVersion")
            if wanted_rv and wanted_rv != live["metadata"].get("resourceVersion"):
                raise Conflict.modified(resource.plural, resource.group, info.name)
            replicas = (wanted.get("spec") or {}).get("replicas", 0)
            if not isinstance(replicas, int) or isinstance(replicas, bool):
                raise BadRequest("spec.replicas must be an integer")
            _set_at(live, (resource.scale_paths or {}).get("specReplicasPath", ".spec.replicas"), replicas)
            return live

        result = await self.storage.update(resource, info.namespace, info.name, mutate,
                                           dry_run="dryRun" in request.query)
        return json_response(self.scale_of(result.obj, resource))

    # -- binding and eviction ----------------------------------------------------------------------------
    async def bind(self, namespace: str, name: str, binding: JSON) -> JSON:
        pods = self.registry.get("", "v1", "pods")
        assert pods is not None
        target = binding.get("target") or {}
        node = target.get("name")
        if not node:
            raise BadRequest("a binding needs target.name, the node to bind to")

        def mutate(live: JSON | None) -> JSON:
            assert live is not None
            current = (live.get("spec") or {}).get("nodeName")
            if live["metadata"].get("deletionTimestamp"):
                raise Conflict(f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is being deleted,'
                               " cannot be assigned to a host")
            if current:
                raise Conflict(f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is already '
                               f'assigned to node "{current}"',
                               details={"name": name, "kind": "pods/binding"})
            live["spec"]["nodeName"] = node
            conditions = [c for c in (live.get("status") or {}).get("conditions", []) if c.get("type") != "PodScheduled"]
            from nanokube.util.timeutil import rfc3339

            conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                               "lastTransitionTime": rfc3339()})
            live.setdefault("status", {})["conditions"] = conditions
            return live

        # Binding writes spec.nodeName and the PodScheduled condition together, as kube's binding registry does.
        await self.storage.update(pods, namespace, name, mutate, subresource="binding")
        return _success()

    async def evict(self, namespace: str, name: str, eviction: JSON) -> JSON:
        await self.eviction.evict(namespace, name, eviction)
        return _success()

    async def finalize(self, name: str, body: JSON) -> JSON:
        namespaces = self.registry.get("", "v1", "namespaces")
        assert namespaces is not None
        finalizers = (body.get("spec") or {}).get("finalizers") or []

        def mutate(live: JSON | None) -> JSON:
            assert live is not None
            live.setdefault("spec", {})["finalizers"] = finalizers
            if not finalizers:
                live["spec"].pop("finalizers")
            return live

        result = await self.storage.update(namespaces, "", name, mutate, subresource="finalize")
        return result.obj

    # -- reviews -----------------------------------------------------------------------------------------
    async def review(self, resource: Resource, obj: JSON, user: JSON) -> JSON:
        """Answer a review kind for ``user`` (a userInfo). Every authenticated user may do everything until
        RBAC is enforced."""
        out = deep_copy(obj)
        out["apiVersion"] = resource.api_version
        out["kind"] = resource.kind
        out.setdefault("metadata", {})
        if resource.kind == "SelfSubjectAccessReview":
            out["status"] = {"allowed": True, "reason": "nanokube does not enforce RBAC yet: every "
                                                         "authenticated user may do everything"}
        elif resource.kind == "SelfSubjectRulesReview":
            out["status"] = {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                             "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                             "incomplete": False}
        elif resource.kind == "SelfSubjectReview":
            out["status"] = {"userInfo": deep_copy(user)}
        return out


def _at(obj: JSON, path: str) -> Any:
    """The value at a simple JSONPath (``.spec.replicas``), or None."""
    value: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _set_at(obj: JSON, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    target = obj
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _success() -> JSON:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
