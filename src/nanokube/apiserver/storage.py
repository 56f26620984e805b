"""Object storage with Kubernetes semantics on top of the key-value store.

``ObjectStorage`` is what kube-apiserver calls the generic registry store: it turns create, get, list, update,
patch and delete of API objects into store operations, and owns the rules every kind shares — uid and
timestamps, ``generateName``, optimistic concurrency, no-op writes that change nothing, finalizers, graceful
deletion and propagation policies, dry runs. Per-kind rules come from ``strategies``.

HTTP knows nothing in here: the REST handlers parse requests into these calls, and the in-process client calls
them directly. Every method raises ``ApiError`` subclasses; store errors are translated here. The rules this
class applies that need no store sit beside it, each with its own tests: ``objectmeta`` (identity, server-set
fields, no-op writes), ``listing`` (list options, selectors, resourceVersion and continue checks), ``deletion``
(what a delete does: preconditions, grace, propagation finalizers) and ``fieldownership``
(``metadata.managedFields`` on every write). Their option types stay importable from here.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nanokube.api import conversion, crdschema, names, schema
from nanokube.api.errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    Expired,
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
)
from nanokube.api.fields import FieldSelector
from nanokube.api.labels import Selector
from nanokube.api.objects import deep_copy
from nanokube.api.registry import Registry, Resource
from nanokube.store.interface import (
    Compacted,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    Store,
)
from nanokube.util.timeutil import rfc3339

from . import deletion, listing, objectmeta
from .continuetoken import encode_continue
from .deletion import DeleteOptions
from .fieldownership import track
from .listing import ListOptions, ListPage, field_spec_for
from .strategies import Strategy, StrategyOptions, strategy_for

log = logging.getLogger(__name__)
JSON = dict[str, Any]
__all__ = ["Admit", "DeleteOptions", "ListOptions", "ListPage", "ObjectStorage", "WriteResult", "field_spec_for"]
_MAX_UPDATE_RETRIES = 16


@dataclass
class WriteResult:
    obj: JSON
    created: bool = False
    warnings: list[str] = field(default_factory=list)


# A hook run inside a write before validation, given the copy being written and the live object (None on
# create). Admission-style checks that need other objects (service IPs, namespaces) plug in here.
Admit = Callable[[Resource, JSON, JSON | None], Awaitable[None]]


class ObjectStorage:
    def __init__(self, store: Store, registry: Registry, options: StrategyOptions | None = None) -> None:
        self.store = store
        self.registry = registry
        self.options = options or StrategyOptions()
        self._strategies: dict[tuple[str, str, str], Strategy] = {}
        self.admitters: list[Admit] = []
        # Called after a write lands (CRD registration and similar server-side reactions).
        self.after_write: list[Callable[[Resource, str, JSON], Awaitable[None]]] = []

    def strategy(self, resource: Resource) -> Strategy:
        key = (resource.group, resource.version, resource.plural)
        strategy = self._strategies.get(key)
        if strategy is None or strategy.resource is not resource:
            strategy = self._strategies[key] = strategy_for(resource, self.options)
        return strategy

    # -- reads -------------------------------------------------------------------------------------------
    async def get(self, resource: Resource, namespace: str, name: str) -> JSON:
        kv = await self.store.get(resource.key(namespace, name))
        if kv is None:
            raise NotFound.object(resource.plural, resource.group, name)
        return self.external(resource, kv.value)

    async def list_objects(self, resource: Resource, namespace: str, opts: ListOptions) -> ListPage:
        listing.check_revision(opts, self.store.revision)
        prefix = resource.key_prefix(namespace)
        token_rev, start_after = listing.continue_from(opts, self.store.compacted_revision)
        if not opts.label_selector and not opts.field_selector:
            result = await self.store.list(prefix, start_after=start_after, limit=opts.limit)
            items = [self.external(resource, kv.value) for kv in result.items]
            token = encode_continue(token_rev or result.revision, result.items[-1].key) if result.more else ""
            # Every page reports the first page's revision, so a watch from it replays what changed since.
            return ListPage(items, str(token_rev or result.revision), token,
                            result.remaining if result.more else None)
        result = await self.store.list(prefix, start_after=start_after)
        matches = listing.matcher(resource, opts.label_selector, opts.field_selector)
        items = []
        last_key = ""
        more = False
        for kv in result.items:
            obj = self.external(resource, kv.value)
            if not matches(obj):
                continue
            if opts.limit and len(items) == opts.limit:
                more = True
                break
            items.append(obj)
            last_key = kv.key
        token = encode_continue(token_rev or result.revision, last_key) if more else ""
        return ListPage(items, str(token_rev or result.revision), token)

    @staticmethod
    def matcher(resource: Resource, labels: Selector | None, fields: FieldSelector | None) -> Callable[[JSON], bool]:
        """A predicate for list filtering and watch events, compiled once per request (``listing.matcher``)."""
        return listing.matcher(resource, labels, fields)

    # -- create ------------------------------------------------------------------------------------------
    async def create(self, resource: Resource, namespace: str, obj: JSON, *, dry_run: bool = False,
                     manager: str | None = None, applied: bool = False) -> JSON:
        """Store a new object and return it as stored. ``obj`` is not modified.

        ``manager`` names the field manager whose ownership ``metadata.managedFields`` records (None: the
        in-process components, whose writes are not tracked); ``applied`` means ``obj`` comes from
        server-side apply with its managedFields already computed."""
        obj = deep_copy(obj)
        meta = objectmeta.check_identity(resource, namespace, obj)
        incoming = meta.get("managedFields")
        for name in objectmeta.SYSTEM_FIELDS:
            meta.pop(name, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339()
        strategy = self.strategy(resource)
        strategy.prepare_create(obj)
        strategy.default(obj)
        track(resource, None, obj, incoming, manager, applied, "")
        generate = not meta.get("name") and bool(meta.get("generateName"))
        if generate:
            meta["name"] = meta["generateName"] + names.generate_name_suffix()
        errors = strategy.validate_create(obj)
        if errors:
            raise Invalid(resource.kind, resource.group, meta.get("name", ""), errors)
        if resource.namespaced:
            await self._check_namespace_open(resource, namespace, meta["name"])
        for admit in self.admitters:
            await admit(resource, obj, None)
        if dry_run:
            return obj
        for attempt in range(8):
            try:
                kv = await self.store.create(resource.key(namespace, meta["name"]), self.internal(resource, obj))
                break
            except KeyExists:
                if not generate or attempt == 7:
                    err = AlreadyExists.object(resource.plural, resource.group, meta["name"])
                    if generate:
                        err.message += ", the server was not able to generate a unique name for the object"
                        (err.details or {}).update(retryAfterSeconds=1)
                    raise err from None
                meta["name"] = meta["generateName"] + names.generate_name_suffix()
        created = self.external(resource, kv.value)
        await self._after_write(resource, "create", created)
        return created

    async def _check_namespace_open(self, resource: Resource, namespace: str, name: str) -> None:
        kv = await self.store.get(f"/core/namespaces/{namespace}")
        if kv is None:
            raise NotFound.object("namespaces", "", namespace)
        if kv.value["metadata"].get("deletionTimestamp"):
            raise Forbidden(
                f'{resource.qualified} "{name}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated",
                details={"name": name, "group": resource.group, "kind": resource.plural,
                         "causes": [{"reason": "NamespaceTerminating",
                                     "message": f"namespace {namespace} is being terminated",
                                     "field": "metadata.namespace"}]})

    # -- update ------------------------------------------------------------------------------------------
    async def update(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        mutate: Callable[[JSON | None], JSON],
        *,
        subresource: str = "",
        dry_run: bool = False,
        create_if_missing: bool = False,
        manager: str | None = None,
        applied: bool = False,
    ) -> WriteResult:
        """Read-modify-write with retries, as kube's GuaranteedUpdate.

        ``mutate`` gets a private copy of the live object (None when absent) and returns the desired object;
        it raises ``Conflict`` itself when the caller's resourceVersion precondition fails, and is called
        again if another writer got in between. A missing object is created when ``create_if_missing``.
        No-op writes return the live object without a new revision."""
        key = resource.key(namespace, name)
        strategy = self.strategy(resource)
        for _ in range(_MAX_UPDATE_RETRIES):
            kv = await self.store.get(key)
            if kv is None:
                if not create_if_missing:
                    raise NotFound.object(resource.plural, resource.group, name)
                desired = mutate(None)
                objectmeta.check_name(name, desired)
                created = await self.create(resource, namespace, desired, dry_run=dry_run, manager=manager,
                                            applied=applied)
                return WriteResult(created, created=True)
            live = self.external(resource, kv.value)
            desired = mutate(deep_copy(live))
            objectmeta.check_name(name, desired)
            objectmeta.check_identity(resource, namespace, desired)
            wanted_uid = desired["metadata"].get("uid")
            if wanted_uid and wanted_uid != live["metadata"].get("uid"):
                raise Invalid(resource.kind, resource.group, name,
                              [FieldError.invalid("metadata.uid", wanted_uid, "field is immutable")])
            incoming = desired["metadata"].get("managedFields")
            objectmeta.keep_system_fields(desired, live)
            # Internal subresources (binding, finalize) write fields the main resource may not change.
            checked = subresource in ("", "status")
            if subresource == "status":
                track(resource, live, desired, incoming, manager, applied, "status")
                strategy.prepare_status_update(desired, live)
            elif subresource == "":
                strategy.default(desired)  # before prepare: generation compares defaulted specs
                track(resource, live, desired, incoming, manager, applied, "")
                strategy.prepare_update(desired, live)
            # Admission first: it carries over what the server allocated (cluster IPs, node ports).
            for admit in self.admitters:
                await admit(resource, desired, live)
            if subresource == "status":
                errors = strategy.validate_status_update(desired, live)
            else:
                errors = strategy.validate_update(desired, live) if checked else []
            errors.extend(deletion.finalizers_added_while_deleting(desired, live))
            if errors:
                raise Invalid(resource.kind, resource.group, name, errors)
            if objectmeta.unchanged(desired, live, managed_fields=incoming is not None and not applied):
                return WriteResult(live)
            if dry_run:
                return WriteResult(desired)
            if deletion.ready_to_remove(desired):
                written = await self._remove(resource, key, kv.mod_revision)
            else:
                written = await self._replace(resource, key, desired, kv.mod_revision)
            if written is not None:
                return WriteResult(written)
        raise Conflict.modified(resource.plural, resource.group, name)

    # -- delete ------------------------------------------------------------------------------------------
    async def delete(self, resource: Resource, namespace: str, name: str, opts: DeleteOptions) -> tuple[JSON, bool]:
        """Delete or start deleting. Returns (object, removed): ``removed`` is False when the object stays
        with a deletionTimestamp (finalizers, graceful pod deletion, foreground/orphan propagation)."""
        key = resource.key(namespace, name)
        strategy = self.strategy(resource)
        for _ in range(_MAX_UPDATE_RETRIES):
            kv = await self.store.get(key)
            if kv is None:
                raise NotFound.object(resource.plural, resource.group, name)
            live = self.external(resource, kv.value)
            step = deletion.plan(resource, name, live, opts, strategy)
            if step.remove:
                if opts.dry_run:
                    return live, True
                removed = await self._remove(resource, key, kv.mod_revision)
                if removed is not None:
                    return removed, True
                continue
            if step.marked is None:
                return live, False
            if opts.dry_run:
                return step.marked, False
            written = await self._replace(resource, key, step.marked, kv.mod_revision)
            if written is not None:
                return written, False
        raise Conflict.modified(resource.plural, resource.group, name)

    async def _replace(self, resource: Resource, key: str, obj: JSON, revision: int) -> JSON | None:
        """Write ``obj`` over stored ``revision``; None when another writer got there first."""
        try:
            stored = await self.store.update(key, self.internal(resource, obj), expected_revision=revision)
        except (RevisionMismatch, KeyNotFound):
            return None
        written = self.external(resource, stored.value)
        await self._after_write(resource, "update", written)
        return written

    async def _remove(self, resource: Resource, key: str, revision: int) -> JSON | None:
        try:
            kv = await self.store.delete(key, expected_revision=revision)
        except (RevisionMismatch, KeyNotFound):
            return None
        gone = self.external(resource, kv.value)
        await self._after_write(resource, "delete", gone)
        return gone

    async def _after_write(self, resource: Resource, verb: str, obj: JSON) -> None:
        for hook in self.after_write:
            try:
                await hook(resource, verb, obj)
            except ApiError:
                raise
            except Exception:  # a reaction must never undo an acknowledged write
                log.exception("after-write hook failed for %s %s", verb, resource.qualified)

    # -- shapes ------------------------------------------------------------------------------------------
    @staticmethod
    def external(resource: Resource, stored: JSON) -> JSON:
        """The object as ``resource`` serves it: events.k8s.io views of core Events are converted, and a
        custom object written through one served version reads through another with that apiVersion
        (CRD conversion ``None``)."""
        if resource.stored_as is not None:
            return conversion.event_to_events_v1(stored)
        if resource.custom and stored.get("apiVersion") != resource.api_version:
            return {**stored, "apiVersion": resource.api_version}
        return stored

    @staticmethod
    def internal(resource: Resource, obj: JSON) -> JSON:
        if resource.stored_as is None:
            return obj
        return conversion.event_to_core(obj)

    # -- helpers for handlers ----------------------------------------------------------------------------
    def watch(self, resource: Resource, namespace: str, after_revision: int) -> Any:
        try:
            return self.store.watch(resource.key_prefix(namespace), after_revision)
        except Compacted as err:
            raise Expired.too_old(err.requested, err.oldest) from err

    @staticmethod
    def unknown_fields(resource: Resource, obj: JSON) -> list[str]:
        if resource.custom:
            return crdschema.prune(obj, resource.schema)[1] if resource.schema else []
        if not resource.definition:
            return []
        return schema.unknown_fields(resource.definition, obj)

    @staticmethod
    def prune(resource: Resource, obj: JSON) -> JSON:
        """``obj`` without the fields its schema does not declare."""
        if resource.custom:
            return crdschema.prune(obj, resource.schema)[0] if resource.schema else obj
        if not resource.definition:
            return obj
        pruned: JSON = schema.prune_unknown(resource.definition, obj)
        return pruned

