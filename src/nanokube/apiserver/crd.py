"""CustomResourceDefinitions: turning a stored CRD into served resources.

When a CRD is written, every served version of it becomes a ``Resource`` in the registry (so discovery,
OpenAPI and the generic REST handler serve it at once) and the CRD's status says so (``NamesAccepted`` and
``Established``, which ``kubectl wait --for=condition=established`` reads). When a CRD is removed its
resources leave the registry and its stored custom objects are deleted, as kube's finalizer does.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from nanokube.api.errors import ApiError, FieldError, Invalid
from nanokube.api.registry import Registry, Resource, Subresource
from nanokube.util.timeutil import rfc3339

from .storage import JSON, DeleteOptions, ObjectStorage

if TYPE_CHECKING:
    from .openapi import OpenAPI
    from .subresources import Subresources

log = logging.getLogger(__name__)
_CRD_PREFIX = "/apiextensions.k8s.io/customresourcedefinitions/"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def _is_crd(resource: Resource) -> bool:
    return resource.group == "apiextensions.k8s.io" and resource.plural == "customresourcedefinitions"


class CustomResources:
    def __init__(self, storage: ObjectStorage, registry: Registry, openapi: OpenAPI, sub: Subresources) -> None:
        self.storage = storage
        self.registry = registry
        self.openapi = openapi
        self.sub = sub
        self._served: dict[str, list[tuple[str, str, str]]] = {}  # CRD name -> (group, version, plural)
        self._cleanups: dict[str, asyncio.Task[None]] = {}
        storage.admitters.append(self.admit)

    async def load(self) -> None:
        page = await self.storage.store.list(_CRD_PREFIX)
        crds = self.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        for kv in page.items:
            self._register(kv.value)
            if crds is not None and kv.value["metadata"].get("deletionTimestamp"):
                await self.after_write(crds, "update", kv.value)  # resume an interrupted cleanup

    async def admit(self, resource: Resource, obj: JSON, live: JSON | None) -> None:
        if not _is_crd(resource):
            return
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        errors: list[FieldError] = []
        group = spec.get("group") or ""
        plural = names.get("plural") or ""
        if not group:
            errors.append(FieldError.required("spec.group"))
        if not plural:
            errors.append(FieldError.required("spec.names.plural"))
        if not names.get("kind"):
            errors.append(FieldError.required("spec.names.kind"))
        if spec.get("scope") not in ("Namespaced", "Cluster"):
            errors.append(FieldError.not_supported("spec.scope", spec.get("scope"), ["Cluster", "Namespaced"]))
        versions = spec.get("versions") or []
        if not versions:
            errors.append(FieldError.required("spec.versions", "must have exactly one version marked as "
                                                               "storage version"))
        elif sum(1 for v in versions if v.get("storage")) != 1:
            errors.append(FieldError.invalid("spec.versions", versions,
                                             "must have exactly one version marked as storage version"))
        name = obj["metadata"].get("name", "")
        if group and plural and name != f"{plural}.{group}":
            errors.append(FieldError.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
        if errors:
            raise Invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, errors)
        if live is None:
            finalizers = obj["metadata"].setdefault("finalizers", [])
            if CLEANUP_FINALIZER not in finalizers:
                finalizers.append(CLEANUP_FINALIZER)

    async def after_write(self, resource: Resource, verb: str, obj: JSON) -> None:
        if not _is_crd(resource):
            return
        name = obj["metadata"]["name"]
        if verb == "delete":
            self._unregister(name)
            await self._delete_custom_objects(obj)  # anything left behind (a CRD without the finalizer)
            return
        if obj["metadata"].get("deletionTimestamp"):
            if CLEANUP_FINALIZER in (obj["metadata"].get("finalizers") or []) and name not in self._cleanups:
                self._cleanups[name] = asyncio.create_task(self._clean_up(resource, name))
            return
        self._register(obj)
        await self._publish_status(resource, obj)

    def _register(self, crd: JSON) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group = spec["group"]
        name = crd["metadata"]["name"]
        self._unregister(name)
        served = []
        for version in spec.get("versions") or []:
            if not version.get("served", True):
                continue
            subs: list[Subresource] = []
            declared = version.get("subresources") or {}
            if "status" in declared:
                subs.append(Subresource("status", names["kind"], ("get", "patch", "update")))
            if "scale" in declared:
                subs.append(Subresource("scale", "Scale", ("get", "patch", "update"), group="autoscaling",
                                        version="v1"))
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            res = Resource(group, version["name"], names["plural"], names["kind"], spec.get("scope") == "Namespaced",
                           singular=names.get("singular") or names["kind"].lower(),
                           short_names=tuple(names.get("shortNames") or ()),
                           categories=tuple(names.get("categories") or ()), subresources=tuple(subs), custom=True,
                           schema=schema, scale_paths=declared.get("scale"),
                           selectable_fields=tuple(f["jsonPath"] for f in version.get("selectableFields") or []
                                                   if f.get("jsonPath")))
            self.registry.add(res)
            self.openapi.set_custom_schema(group, version["name"], names["kind"], schema or {"type": "object"})
            columns = version.get("additionalPrinterColumns")
            if columns:
                self.sub.printer_columns[(group, version["name"], names["plural"])] = columns
            served.append((group, version["name"], names["plural"]))
        self._served[name] = served
        self.openapi.invalidate()

    def _unregister(self, name: str) -> None:
        for group, version, plural in self._served.pop(name, []):
            self.registry.remove(group, version, plural)
            self.sub.printer_columns.pop((group, version, plural), None)
        self.openapi.invalidate()

    async def _publish_status(self, resource: Resource, crd: JSON) -> None:
        names = (crd.get("spec") or {}).get("names") or {}
        accepted = {k: v for k, v in names.items() if k in ("plural", "singular", "kind", "listKind", "shortNames",
                                                            "categories")}
        accepted.setdefault("singular", names.get("kind", "").lower())
        accepted.setdefault("listKind", f"{names.get('kind', '')}List")
        status = crd.get("status") or {}
        if status.get("acceptedNames") == accepted and {c.get("type") for c in status.get("conditions") or []} >= {
                "Established", "NamesAccepted"}:
            return
        now = rfc3339()
        conditions = [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ]
        storage_versions = [v["name"] for v in (crd.get("spec") or {}).get("versions") or [] if v.get("storage")]

        def mutate(live: JSON | None) -> JSON:
            assert live is not None
            live["status"] = {"acceptedNames": accepted, "conditions": conditions,
                              "storedVersions": storage_versions}
            return live

        await self.storage.update(resource, "", crd["metadata"]["name"], mutate, subresource="status")

    async def _clean_up(self, resource: Resource, name: str, period: float = 0.5) -> None:
        """Delete a terminating CRD's objects through the API (their own finalizers run), then release the
        CRD: kube's customresourcecleanup finalizer."""
        try:
            while True:
                crd = await self.storage.store.get(resource.key("", name))
                if crd is None or not crd.value["metadata"].get("deletionTimestamp"):
                    return
                served = [self.registry.get(g, v, p) for g, v, p in self._served.get(name, [])]
                custom = next((r for r in served if r is not None), None)
                left = 0
                if custom is not None:
                    page = await self.storage.store.list(custom.key_prefix())
                    for kv in page.items:
                        left += 1
                        meta = kv.value["metadata"]
                        if meta.get("deletionTimestamp"):
                            continue
                        try:
                            await self.storage.delete(custom, meta.get("namespace", ""), meta["name"],
                                                      DeleteOptions())
                        except ApiError:
                            pass
                if not left:
                    def release(live: JSON | None) -> JSON:
                        assert live is not None
                        live["metadata"]["finalizers"] = [f for f in live["metadata"].get("finalizers") or []
                                                          if f != CLEANUP_FINALIZER]
                        return live

                    await self.storage.update(resource, "", name, release, subresource="finalize")
                    return
                await asyncio.sleep(period)
        except Exception:
            log.exception("cleaning up custom resource definition %s failed", name)
        finally:
            self._cleanups.pop(name, None)

    async def _delete_custom_objects(self, crd: JSON) -> None:
        spec = crd.get("spec") or {}
        prefix = f"/{spec.get('group')}/{(spec.get('names') or {}).get('plural')}/"
        page = await self.storage.store.list(prefix)
        for kv in page.items:
            try:
                await self.storage.store.delete(kv.key)
            except Exception:  # already gone
                log.debug("custom object %s vanished during CRD cleanup", kv.key)


def crd_names(crd: JSON) -> dict[str, Any]:
    return dict((crd.get("spec") or {}).get("names") or {})
