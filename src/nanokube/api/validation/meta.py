"""ObjectMeta validation on create and update, as apimachinery's ``api/validation/objectmeta.go`` does it.

Every kind runs this first. The per-kind part is only the name rule (``NameFunc``): most kinds want a DNS-1123
subdomain, namespaces and StatefulSets a DNS-1123 label, Services a DNS-1035 label, RBAC objects a path
segment. Labels, annotations, owner references and finalizers are checked the same way for all kinds, and the
helpers for labels and annotations are reused by pod templates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import formats
from .field import (
    Errors,
    as_dict,
    as_list,
    as_str,
    child,
    forbidden,
    immutable,
    index,
    invalid,
    nonnegative,
    required,
    too_long,
)

NameFunc = Callable[[str, bool], list[str]]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion",
                                 "customresourcecleanup.apiextensions.k8s.io"})


name_is_dns_subdomain = formats.name_is_dns_subdomain
name_is_dns_label = formats.name_is_dns_label
name_is_dns1035_label = formats.name_is_dns1035_label


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    return formats.is_path_segment_name(name)


def validate_labels(labels: Any, path: str) -> Errors:
    """``ValidateLabels``: each key a qualified name, each value a label value; errors sit on the map's path."""
    errs: Errors = []
    for k, v in as_dict(labels).items():
        errs.extend(validate_label_name(k, path))
        value = v if isinstance(v, str) else ""
        errs.extend(invalid(path, value, msg) for msg in formats.is_valid_label_value(value))
    return errs


def validate_label_name(name: str, path: str) -> Errors:
    return [invalid(path, name, msg) for msg in formats.is_qualified_name(name)]


def validate_annotations(annotations: Any, path: str) -> Errors:
    errs: Errors = []
    total = 0
    for k, v in as_dict(annotations).items():
        errs.extend(invalid(path, k, msg) for msg in formats.is_qualified_name(k.lower()))
        total += len(k.encode()) + len(as_str(v).encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def _owner_reference(ref: dict[str, Any], path: str) -> Errors:
    errs: Errors = []
    api_version = as_str(ref.get("apiVersion"))
    if not api_version:
        errs.append(required(child(path, "apiVersion"), "must not be empty"))
    elif api_version.count("/") > 1 or api_version.endswith("/") or api_version.startswith("/"):
        errs.append(invalid(child(path, "apiVersion"), api_version, "must be <group>/<version> or <version>"))
    for name in ("kind", "name", "uid"):
        if not as_str(ref.get(name)):
            errs.append(required(child(path, name), "must not be empty"))
    if api_version == "v1" and ref.get("kind") == "Event":
        errs.append(invalid(path, ref, "/v1, Kind=Event is disallowed from being an owner"))
    return errs


def validate_owner_references(refs: Any, path: str) -> Errors:
    errs: Errors = []
    first_controller = ""
    for i, ref in enumerate(as_list(refs)):
        ref = as_dict(ref)
        errs.extend(_owner_reference(ref, index(path, i)))
        if ref.get("controller") is True:
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if first_controller:
                errs.append(invalid(path, refs, "Only one reference can have Controller set to true. Found "
                                    f'"true" in references for {first_controller} and {current}'))
            else:
                first_controller = current
    return errs


def validate_finalizers(finalizers: Any, path: str) -> Errors:
    """Generic finalizer checks plus the core rule that unqualified names must be standard ones."""
    errs: Errors = []
    names = [as_str(f) for f in as_list(finalizers)]
    for name in names:
        errs.extend(invalid(path, name, msg) for msg in formats.is_qualified_name(name))
    if "orphan" in names and "foregroundDeletion" in names:
        errs.append(invalid(path, names, "finalizer orphan and foregroundDeletion cannot be both set"))
    for i, name in enumerate(names):
        errs.extend(validate_kube_finalizer_name(name, index(path, i)))
    return errs


def validate_kube_finalizer_name(name: str, path: str) -> Errors:
    if "/" not in name and name not in STANDARD_FINALIZERS:
        return [invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified")]
    return []


def validate_object_meta(obj: dict[str, Any], namespaced: bool, name_fn: NameFunc, path: str = "metadata") -> Errors:
    """``ValidateObjectMeta`` for a create: name (or generateName), namespace, labels, annotations, owners."""
    meta = as_dict(obj.get("metadata"))
    errs: Errors = []
    generate_name = as_str(meta.get("generateName"))
    if generate_name:
        errs.extend(invalid(child(path, "generateName"), generate_name, msg) for msg in name_fn(generate_name, True))
    name = as_str(meta.get("name"))
    if not name:
        errs.append(required(child(path, "name"), "name or generateName is required"))
    else:
        errs.extend(invalid(child(path, "name"), name, msg) for msg in name_fn(name, False))
    errs.extend(_common(meta, namespaced, path))
    return errs


def _common(meta: dict[str, Any], namespaced: bool, path: str) -> Errors:
    errs: Errors = []
    namespace = as_str(meta.get("namespace"))
    if namespaced:
        if not namespace:
            errs.append(required(child(path, "namespace")))
        else:
            errs.extend(invalid(child(path, "namespace"), namespace, m) for m in name_is_dns_label(namespace, False))
    elif namespace:
        errs.append(forbidden(child(path, "namespace"), "not allowed on this type"))
    errs.extend(nonnegative(child(path, "generation"), meta.get("generation")))
    errs.extend(validate_labels(meta.get("labels"), child(path, "labels")))
    errs.extend(validate_annotations(meta.get("annotations"), child(path, "annotations")))
    errs.extend(validate_owner_references(meta.get("ownerReferences"), child(path, "ownerReferences")))
    errs.extend(validate_finalizers(meta.get("finalizers"), child(path, "finalizers")))
    return errs


def validate_object_meta_update(new: dict[str, Any], old: dict[str, Any], path: str = "metadata") -> Errors:
    """``ValidateObjectMetaUpdate``: identity fields are immutable, deletion blocks new finalizers.

    The resourceVersion rule ("must be specified for an update") is left to the server, which fills an empty
    resourceVersion from the stored object for kinds that allow unconditional updates before validating.
    """
    new_meta, old_meta = as_dict(new.get("metadata")), as_dict(old.get("metadata"))
    errs: Errors = []
    if old_meta.get("deletionTimestamp"):
        added = sorted(set(as_list(new_meta.get("finalizers"))) - set(as_list(old_meta.get("finalizers"))))
        if added:
            shown = "[]string{" + ", ".join(f'"{f}"' for f in added) + "}"
            errs.append(forbidden(child(path, "finalizers"), "no new finalizers can be added if the object is being "
                                  f"deleted, found new finalizers {shown}"))
    errs.extend(nonnegative(child(path, "generation"), new_meta.get("generation")))
    new_gen, old_gen = new_meta.get("generation"), old_meta.get("generation")
    if isinstance(new_gen, int) and isinstance(old_gen, int) and new_gen < old_gen:
        errs.append(invalid(child(path, "generation"), new_gen, "must not be decremented"))
    for name in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                 "deletionGracePeriodSeconds"):
        errs.extend(immutable(child(path, name), new_meta.get(name, _unset(name)), old_meta.get(name, _unset(name))))
    errs.extend(validate_labels(new_meta.get("labels"), child(path, "labels")))
    errs.extend(validate_annotations(new_meta.get("annotations"), child(path, "annotations")))
    errs.extend(validate_owner_references(new_meta.get("ownerReferences"), child(path, "ownerReferences")))
    for i, name in enumerate(as_list(new_meta.get("finalizers"))):
        errs.extend(validate_kube_finalizer_name(as_str(name), index(child(path, "finalizers"), i)))
    return errs


def _unset(name: str) -> Any:
    """What an absent identity field compares (and prints) as: "" for strings, null for pointers."""
    return "" if name in ("name", "namespace", "uid") else None
