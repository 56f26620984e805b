"""Printers for volumes: PersistentVolume, PersistentVolumeClaim (core/v1) and StorageClass (storage.k8s.io).

Access modes print in Kubernetes' fixed order (RWO, ROX, RWX, RWOP) whatever order the object lists them; the
storage class comes from the legacy ``volume.beta.kubernetes.io/storage-class`` annotation before the field; a
volume or claim being deleted shows ``Terminating``. A claim shows capacity and access modes only once bound.

StorageClass marks only the *effective* default with `` (default)``: when several classes carry the
is-default-class annotation, the newest (then the alphabetically first) wins. The API server's convertor looks
that up across all classes; here it is decided across the objects of the table (``prepare``), so a one-object
table marks its class when the class itself is annotated, as the convertor does without a lister.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from nanokube.api.tables.common import (
    AGE,
    JSON,
    NAME,
    UNSET,
    Column,
    Context,
    Printer,
    age,
    dig,
    items,
    mapping,
    name_of,
    parse_time,
    quantity_text,
    text,
    wide,
)

_CORE = "io.k8s.api.core.v1."
_SC = "io.k8s.api.storage.v1.StorageClass"
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")
_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP"))
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


def access_modes(modes: list[Any]) -> str:
    return ",".join(short for mode, short in _MODES if mode in modes)


def _storage_class(obj: JSON) -> str:
    annotations = mapping(obj, "metadata", "annotations")
    if BETA_CLASS_ANNOTATION in annotations:
        return str(annotations[BETA_CLASS_ANNOTATION])
    return text(obj, "spec", "storageClassName")


def _phase(obj: JSON) -> str:
    if dig(obj, "metadata", "deletionTimestamp") is not None:
        return "Terminating"
    return text(obj, "status", "phase")


def _claim(pv: JSON) -> str:
    ref = dig(pv, "spec", "claimRef")
    if not isinstance(ref, Mapping):
        return ""
    return f"{text(ref, 'namespace')}/{text(ref, 'name')}"


def _pv_cells(pv: JSON, ctx: Context) -> list[Any]:
    return [
        name_of(pv), quantity_text(dig(pv, "spec", "capacity", "storage")),
        access_modes(items(pv, "spec", "accessModes")), text(pv, "spec", "persistentVolumeReclaimPolicy"),
        _phase(pv), _claim(pv), _storage_class(pv), text(pv, "spec", "volumeAttributesClassName") or UNSET,
        text(pv, "status", "reason"), age(pv, ctx), text(pv, "spec", "volumeMode") or UNSET,
    ]


PERSISTENT_VOLUME = Printer((
    NAME,
    Column("Capacity", doc=(_CORE + "PersistentVolumeSpec", "capacity")),
    Column("Access Modes", doc=(_CORE + "PersistentVolumeSpec", "accessModes")),
    Column("Reclaim Policy", doc=(_CORE + "PersistentVolumeSpec", "persistentVolumeReclaimPolicy")),
    Column("Status", doc=(_CORE + "PersistentVolumeStatus", "phase")),
    Column("Claim", doc=(_CORE + "PersistentVolumeSpec", "claimRef")),
    Column("StorageClass", doc="StorageClass of the pv"),
    Column("VolumeAttributesClass", doc="VolumeAttributesClass of the pv"),
    Column("Reason", doc=(_CORE + "PersistentVolumeStatus", "reason")),
    AGE,
    wide("VolumeMode", (_CORE + "PersistentVolumeSpec", "volumeMode")),
), _pv_cells)


def _pvc_cells(pvc: JSON, ctx: Context) -> list[Any]:
    volume = text(pvc, "spec", "volumeName")
    capacity = quantity_text(dig(pvc, "status", "capacity", "storage")) if volume else ""
    modes = access_modes(items(pvc, "status", "accessModes")) if volume else ""
    return [
        name_of(pvc), _phase(pvc), volume, capacity, modes, _storage_class(pvc),
        text(pvc, "spec", "volumeAttributesClassName") or UNSET, age(pvc, ctx),
        text(pvc, "spec", "volumeMode") or UNSET,
    ]


PERSISTENT_VOLUME_CLAIM = Printer((
    NAME,
    Column("Status", doc=(_CORE + "PersistentVolumeClaimStatus", "phase")),
    Column("Volume", doc=(_CORE + "PersistentVolumeClaimSpec", "volumeName")),
    Column("Capacity", doc=(_CORE + "PersistentVolumeClaimStatus", "capacity")),
    Column("Access Modes", doc=(_CORE + "PersistentVolumeClaimStatus", "accessModes")),
    Column("StorageClass", doc="StorageClass of the pvc"),
    Column("VolumeAttributesClass", doc="VolumeAttributesClass of the pvc"),
    AGE,
    wide("VolumeMode", (_CORE + "PersistentVolumeClaimSpec", "volumeMode")),
), _pvc_cells)


# -- StorageClass ----------------------------------------------------------------------------------------

def is_default_class(obj: JSON) -> bool:
    annotations = mapping(obj, "metadata", "annotations")
    return any(annotations.get(key) == "true" for key in DEFAULT_CLASS_ANNOTATIONS)


def effective_default(classes: list[JSON]) -> str:
    """The name of the default class that wins: newest creationTimestamp, then the first name."""
    defaults = [c for c in classes if is_default_class(c)]
    if not defaults:
        return ""

    def order(c: JSON) -> tuple[float, str]:
        created = parse_time(dig(c, "metadata", "creationTimestamp")) or _EPOCH
        return (-(created - _EPOCH).total_seconds(), name_of(c))

    return name_of(min(defaults, key=order))


def _prepare_classes(classes: list[JSON], ctx: Context) -> None:
    ctx.shared["default-storage-class"] = effective_default(classes)


def _class_cells(sc: JSON, ctx: Context) -> list[Any]:
    name = name_of(sc)
    if name and name == ctx.shared.get("default-storage-class"):
        name += " (default)"
    expansion = sc.get("allowVolumeExpansion")
    return [name, text(sc, "provisioner"), text(sc, "reclaimPolicy") or "Delete",
            text(sc, "volumeBindingMode") or "Immediate", expansion if isinstance(expansion, bool) else False,
            age(sc, ctx)]


STORAGE_CLASS = Printer((
    NAME,
    Column("Provisioner", doc=(_SC, "provisioner")),
    Column("ReclaimPolicy", doc=(_SC, "reclaimPolicy")),
    Column("VolumeBindingMode", doc=(_SC, "volumeBindingMode")),
    Column("AllowVolumeExpansion", doc=(_SC, "allowVolumeExpansion")),
    AGE,
), _class_cells, prepare=_prepare_classes)
