"""The generic REST handler: one entry point for every resource URL.

``RestHandler.handle`` parses the path (``requestinfo``), finds the resource in the registry, and runs the
verb: get, list, watch, create, update, patch, delete, deletecollection, or a subresource (``subresources``).
Query parameters and DeleteOptions are parsed by ``requestparams``, object semantics live in
``storage.ObjectStorage``; what is left here is routing and running each verb.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from nanokube.api import managedfields, tables
from nanokube.api import patch as patching
from nanokube.api.errors import (
    ApiError,
    BadRequest,
    Conflict,
    InternalError,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
    UnprocessablePatch,
    UnsupportedMediaType,
)
from nanokube.api.registry import Registry, Resource
from nanokube.util.timeutil import rfc3339

from .identity import ADMIN, USER
from .negotiation import (
    JSON_TYPE,
    PATCH_TYPES,
    TABLE_TYPE,
    body_media_type,
    choose_output,
    decode_body,
    decode_patch_body,
)
from .requestinfo import RequestInfo, parse_resource_path
from .requestparams import (
    delete_options,
    dry_run,
    field_manager,
    field_validation,
    flag,
    json_response,
    list_options,
    list_options_invalid,
    warning_headers,
)
from .storage import ListOptions, ObjectStorage
from .subresources import Subresources
from .watchstream import WatchRequest, WatchStream

log = logging.getLogger(__name__)
JSON = dict[str, Any]
__all__ = ["RestHandler", "field_manager", "json_response"]  # subresources and app take these from here
_MAX_JSON_PATCH_OPS = 10000
# Kinds whose DELETE answers with the deleted object rather than a Status (kube's ReturnDeletedObject); the
# Python client's typed models expect exactly this.
_RETURNS_DELETED = frozenset({("", "pods"), ("", "services"), ("", "serviceaccounts"), ("", "persistentvolumes"),
                              ("", "persistentvolumeclaims"), ("", "resourcequotas"),
                              ("storage.k8s.io", "storageclasses")})


class RestHandler:
    def __init__(self, storage: ObjectStorage, registry: Registry, watch: WatchStream) -> None:
        self.storage = storage
        self.registry = registry
        self.watches = watch
        self.sub = Subresources(storage, registry)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        info = parse_resource_path(request.path)
        if info is None:
            raise NotFound.path()
        resource = self.registry.get(info.group, info.version, info.resource)
        if resource is None:
            raise NotFound.path()
        if resource.namespaced and not info.namespace and info.name:
            raise NotFound.path()
        if not resource.namespaced and info.namespace:
            raise NotFound.path()
        if info.subresource:
            return await self.sub.handle(request, resource, info)
        method = request.method
        if info.is_collection:
            if method == "GET":
                if flag(request.query.get("watch")):
                    self._require(resource, "watch")
                    return await self.watch(request, resource, info)
                self._require(resource, "list")
                return await self.list_collection(request, resource, info)
            if method == "POST":
                self._require(resource, "create")
                return await self.create(request, resource, info)
            if method == "DELETE":
                self._require(resource, "deletecollection")
                return await self.delete_collection(request, resource, info)
            raise _route_not_allowed()
        if method == "GET":
            self._require(resource, "get")
            return await self.get(request, resource, info)
        if method == "PUT":
            self._require(resource, "update")
            return await self.update(request, resource, info)
        if method == "PATCH":
            self._require(resource, "patch")
            return await self.patch(request, resource, info)
        if method == "DELETE":
            self._require(resource, "delete")
            return await self.delete(request, resource, info)
        raise _route_not_allowed()

    @staticmethod
    def _require(resource: Resource, verb: str) -> None:
        if verb not in resource.verbs:
            raise _route_not_allowed()

    # -- reads -------------------------------------------------------------------------------------------
    async def get(self, request: web.Request, resource: Resource, info: RequestInfo) -> web.StreamResponse:
        obj = await self.storage.get(resource, info.namespace, info.name)
        output = choose_output(request.headers.get("Accept"))
        if output.table:
            table = self._table(request, resource, [obj])
            table["metadata"] = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return json_response(table, content_type=TABLE_TYPE)
        return json_response(obj)

    async def list_collection(self, request: web.Request, resource: Resource, info: RequestInfo) -> web.StreamResponse:
        if flag(request.query.get("sendInitialEvents")):
            raise list_options_invalid("sendInitialEvents", "sendInitialEvents is forbidden for list")
        opts = list_options(request, resource)
        page = await self.storage.list_objects(resource, info.namespace, opts)
        meta: JSON = {"resourceVersion": page.resource_version}
        if page.continue_token:
            meta["continue"] = page.continue_token
            if page.remaining:
                meta["remainingItemCount"] = page.remaining
        output = choose_output(request.headers.get("Accept"))
        if output.table:
            table = self._table(request, resource, page.items)
            table["metadata"] = meta
            return json_response(table, content_type=TABLE_TYPE)
        body = {"kind": resource.list_kind, "apiVersion": resource.api_version, "metadata": meta,
                "items": page.items}
        return json_response(body)

    def _table(self, request: web.Request, resource: Resource, items: list[JSON], *, no_headers: bool = False) -> JSON:
        include = request.query.get("includeObject", "Metadata")
        columns = self.sub.custom_columns(resource)
        return tables.table_for(resource.group, resource.kind, items, include_object=include,
                                custom_columns=columns, no_headers=no_headers)

    async def watch(self, request: web.Request, resource: Resource, info: RequestInfo) -> web.StreamResponse:
        q = request.query
        opts = list_options(request, resource)
        send_initial = flag(q.get("sendInitialEvents"))
        if send_initial and opts.resource_version_match != "NotOlderThan":
            raise list_options_invalid(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
        if opts.resource_version and opts.resource_version != "0":
            try:
                int(opts.resource_version)
            except ValueError:
                raise BadRequest(f"invalid resource version: {opts.resource_version}") from None
        timeout = None
        if q.get("timeoutSeconds"):
            try:
                timeout = float(q["timeoutSeconds"])
            except ValueError:
                raise BadRequest(f"invalid timeoutSeconds: {q['timeoutSeconds']}") from None
        wreq = WatchRequest(resource, info.namespace, opts.resource_version, opts.label_selector,
                            opts.field_selector, send_initial, flag(q.get("allowWatchBookmarks")), timeout)
        output = choose_output(request.headers.get("Accept"))
        if output.table:
            def render(obj: JSON, first: bool) -> JSON:
                table = self._table(request, resource, [obj], no_headers=not first)
                table["metadata"] = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                return table
            return await self.watches.serve(request, wreq, render, TABLE_TYPE)
        return await self.watches.serve(request, wreq, None, JSON_TYPE)

    # -- writes ------------------------------------------------------------------------------------------
    def _unknown_fields(self, request: web.Request, resource: Resource, obj: JSON, warnings: list[str]) -> JSON:
        """Apply fieldValidation: Strict rejects unknown fields; Warn and Ignore drop them (Warn says so)."""
        mode = field_validation(request)
        unknown = self.storage.unknown_fields(resource, obj)
        if not unknown:
            return obj
        if mode == "Strict":
            listed = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise BadRequest(f'{resource.kind} in version "{resource.version}" cannot be handled as a '
                             f"{resource.kind}: strict decoding error: {listed}")
        if mode == "Warn":
            warnings.extend(f'unknown field "{u}"' for u in unknown)
        return self.sub.prune(resource, obj)

    async def _read_object(self, request: web.Request) -> JSON:
        body = decode_body(await request.read(), request.headers.get("Content-Type"))
        if not isinstance(body, dict):
            raise BadRequest("the body of the request must be an object")
        return body

    async def create(self, request: web.Request, resource: Resource, info: RequestInfo) -> web.StreamResponse:
        if resource.namespaced and not info.namespace:
            raise NotFound.path()
        obj = await self._read_object(request)
        if not resource.stored:
            return json_response(await self.sub.review(resource, obj, request.get(USER) or ADMIN), status=201)
        warnings: list[str] = []
        obj = self._unknown_fields(request, resource, obj, warnings)
        created = await self.storage.create(resource, info.namespace, obj, dry_run=dry_run(request),
                                            manager=field_manager(request))
        return json_response(created, status=201, headers=warning_headers(warnings))

    async def update(self, request: web.Request, resource: Resource, info: RequestInfo) -> web.StreamResponse:
        obj = await self._read_object(request)
        warnings: list[str] = []
        obj = self._unknown_fields(request, resource, obj, warnings)
        wanted_rv = (obj.get("metadata") or {}).get("resourceVersion") or ""
        wanted_uid = (obj.get("metadata") or {}).get("uid") or ""

        def mutate(live: JSON | None) -> JSON:
            if live is not None and wanted_uid and wanted_uid != live["metadata"].get("uid"):
                # kube derives a uid precondition from the body: a replace never lands on a re-created object.
                raise Conflict(f'Operation cannot be fulfilled on {resource.qualified} "{info.name}": Precondition '
                               f"failed: UID in precondition: {wanted_uid}, UID in object meta: "
                               f"{live['metadata'].get('uid')}",
                               details={"name": info.name, **({"group": resource.group} if resource.group else {}),
                                        "kind": resource.plural})
            if live is not None and wanted_rv and wanted_rv != live["metadata"].get("resourceVersion"):
                raise Conflict.modified(resource.plural, resource.group, info.name)
            return obj

        result = await self.storage.update(resource, info.namespace, info.name, mutate,
                                           dry_run=dry_run(request), manager=field_manager(request))
        return json_response(result.obj, status=201 if result.created else 200,
                             headers=warning_headers(warnings))

    async def patch(self, request: web.Request, resource: Resource, info: RequestInfo,
                    subresource: str = "") -> web.StreamResponse:
        media = body_media_type(request.headers.get("Content-Type"))
        allowed = [t for t in PATCH_TYPES if not (resource.custom and t.startswith("application/strategic"))]
        if media not in allowed:
            raise UnsupportedMediaType.accepted(allowed)
        patch_body = decode_patch_body(await request.read(), media)
        if media == "application/json-patch+json":
            if not isinstance(patch_body, list):
                raise BadRequest("the body of the request was not a JSON patch: expected an array of operations")
            if len(patch_body) > _MAX_JSON_PATCH_OPS:
                raise RequestEntityTooLarge(
                    f"The allowed maximum operations in a JSON patch is {_MAX_JSON_PATCH_OPS}, got {len(patch_body)}")
        elif not isinstance(patch_body, dict):
            raise BadRequest("the body of the request must be a JSON object")
        warnings: list[str] = []
        is_apply = media == "application/apply-patch+yaml"
        if is_apply:
            if not request.query.get("fieldManager", ""):
                raise BadRequest("PATCH, application/apply-patch+yaml requires fieldManager to be set")
            mutate = self.applier(request, resource, info, patch_body, warnings, subresource)
        else:
            mutate = self.patcher(request, resource, info, media, patch_body, warnings)
        result = await self.storage.update(resource, info.namespace, info.name, mutate, subresource=subresource,
                                           dry_run=dry_run(request),
                                           create_if_missing=is_apply and not subresource,
                                           manager=field_manager(request), applied=is_apply)
        return json_response(result.obj, status=201 if result.created else 200,
                             headers=warning_headers(warnings))

    def applier(self, request: web.Request, resource: Resource, info: RequestInfo, applied: JSON,
                warnings: list[str], subresource: str) -> Any:
        """Server-side apply: merge, drop what this manager stopped applying, refuse conflicts unless forced;
        the result carries its new ``managedFields``."""
        body = self._unknown_fields(request, resource, dict(applied), warnings)
        body.setdefault("metadata", {}).setdefault("name", info.name)
        manager = request.query["fieldManager"]
        force = flag(request.query.get("force"))

        def mutate(live: JSON | None) -> JSON:
            try:
                result: JSON = managedfields.apply(
                    live, body, manager, force=force, definition=resource.definition or None,
                    api_version=resource.api_version, now=rfc3339(), subresource=subresource,
                    schema=resource.schema)
            except managedfields.ApplyConflict as err:
                raise err.error() from err
            except patching.PatchError as err:
                raise _patch_failure(err) from err
            return result

        return mutate

    def patcher(self, request: web.Request, resource: Resource, info: RequestInfo, media: str, patch_body: Any,
                warnings: list[str]) -> Any:
        definition = resource.definition or None

        def mutate(live: JSON | None) -> JSON:
            try:
                if live is None:  # server-side apply creating the object
                    result = dict(patch_body)
                elif media == "application/json-patch+json":
                    result = patching.json_patch(live, patch_body)
                elif media == "application/merge-patch+json":
                    result = patching.json_merge_patch(live, patch_body)
                elif media == "application/strategic-merge-patch+json":
                    result = patching.strategic_merge_patch(live, patch_body, definition)
                else:
                    result = patching.apply_patch(live, patch_body, definition)
            except patching.PatchError as err:
                raise _patch_failure(err) from err
            if not isinstance(result, dict):
                raise BadRequest("the patched object is not a JSON object")
            if live is not None:
                patched_rv = (result.get("metadata") or {}).get("resourceVersion")
                if patched_rv and patched_rv != live["metadata"].get("resourceVersion"):
                    raise Conflict.modified(resource.plural, resource.group, info.name)
            return self._unknown_fields(request, resource, result, warnings)

        return mutate

    async def delete(self, request: web.Request, resource: Resource, info: RequestInfo) -> web.StreamResponse:
        opts = await delete_options(request)
        obj, removed = await self.storage.delete(resource, info.namespace, info.name, opts)
        if removed and (resource.group, resource.plural) not in _RETURNS_DELETED:
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": info.name, "group": resource.group, "kind": resource.plural,
                                  "uid": obj["metadata"].get("uid", "")}}
            return json_response(status)
        return json_response(obj)

    async def delete_collection(self, request: web.Request, resource: Resource,
                                info: RequestInfo) -> web.StreamResponse:
        opts = list_options(request, resource)
        del_opts = await delete_options(request)
        page = await self.storage.list_objects(resource, info.namespace, ListOptions(opts.label_selector,
                                                                            opts.field_selector))
        deleted = []
        for obj in page.items:
            meta = obj["metadata"]
            try:
                gone, _ = await self.storage.delete(resource, meta.get("namespace", ""), meta["name"], del_opts)
            except NotFound:
                continue
            deleted.append(gone)
        body = {"kind": resource.list_kind, "apiVersion": resource.api_version,
                "metadata": {"resourceVersion": str(self.storage.store.revision)}, "items": deleted}
        return json_response(body)


def _patch_failure(err: patching.PatchError) -> ApiError:
    """The Status for a patch that failed: 400 malformed, 415 no schema (SMP on a custom resource),
    422 does not apply, 500 (reason Unknown) where kube's strategic merge refuses with a plain error."""
    if err.code == 400:
        return BadRequest(str(err))
    if err.code == 415:
        return UnsupportedMediaType(str(err))
    if err.code == 422:
        return UnprocessablePatch(str(err))
    failure = InternalError(str(err))
    failure.reason = "Unknown"
    return failure


def _route_not_allowed() -> MethodNotAllowed:
    """kube registers no route for a verb a resource lacks; go-restful answers with its own wording."""
    return MethodNotAllowed("the server does not allow this method on the requested resource")
