"""Server-side printing: objects to ``meta.k8s.io/v1`` Tables, as kube-apiserver renders them for ``kubectl get``.

``table_for(group, kind, objects)`` picks the kind's printer and returns the whole Table body; the caller adds
``metadata.resourceVersion``/``continue``. Which printer, in order:

1. a built-in printer from ``printers.go`` (pods.py, core.py, events.py, storage.py, apps.py, batch.py, misc.py);
2. a custom resource (``custom_columns`` given, or a kind the built-in registry does not know): ``Name`` plus the
   CRD's ``additionalPrinterColumns``, or ``Name``/``Age`` when it declares none (custom.py);
3. any other built-in kind (Role, ClusterRole, LimitRange, CustomResourceDefinition, ...): the API server's
   default convertor, ``Name`` and ``Created At`` (an RFC 3339 date).

Rows always carry every column, wide ones included: kubectl drops priority-1 columns unless ``-o wide``. Each row's
``object`` is, per ``includeObject``, a ``PartialObjectMetadata`` with the object's full metadata (the default,
needed for ``-A``, ``--show-labels`` and ``-L``), the object itself, or left out. Rows share dicts with the input
objects: callers serialize the result, they do not mutate it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from nanokube.api.errors import BadRequest
from nanokube.api.registry import BUILTIN
from nanokube.api.tables import apps, batch, core, misc, storage
from nanokube.api.tables.common import (
    JSON,
    META,
    NAME,
    Column,
    Context,
    Printer,
    dig,
    human_duration,
    name_of,
    parse_time,
    since,
)
from nanokube.api.tables.custom import custom_printer
from nanokube.api.tables.events import EVENT
from nanokube.api.tables.pods import POD, pod_status
from nanokube.util import timeutil

__all__ = [
    "INCLUDE_OBJECT",
    "Column",
    "Printer",
    "default_printer",
    "has_printer",
    "human_duration",
    "partial_object_metadata",
    "pod_status",
    "printer_for",
    "since",
    "table_for",
]

INCLUDE_OBJECT = ("None", "Metadata", "Object")

PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "Pod"): POD,
    ("", "Node"): core.NODE,
    ("", "Service"): core.SERVICE,
    ("", "Endpoints"): core.ENDPOINTS,
    ("", "Namespace"): core.NAMESPACE,
    ("", "Secret"): core.SECRET,
    ("", "ConfigMap"): core.CONFIG_MAP,
    ("", "ServiceAccount"): core.SERVICE_ACCOUNT,
    ("", "ReplicationController"): core.REPLICATION_CONTROLLER,
    ("", "ResourceQuota"): core.RESOURCE_QUOTA,
    ("", "Event"): EVENT,
    ("events.k8s.io", "Event"): EVENT,
    ("", "PersistentVolume"): storage.PERSISTENT_VOLUME,
    ("", "PersistentVolumeClaim"): storage.PERSISTENT_VOLUME_CLAIM,
    ("storage.k8s.io", "StorageClass"): storage.STORAGE_CLASS,
    ("apps", "Deployment"): apps.DEPLOYMENT,
    ("apps", "ReplicaSet"): apps.REPLICA_SET,
    ("apps", "StatefulSet"): apps.STATEFUL_SET,
    ("apps", "DaemonSet"): apps.DAEMON_SET,
    ("apps", "ControllerRevision"): apps.CONTROLLER_REVISION,
    ("batch", "Job"): batch.JOB,
    ("batch", "CronJob"): batch.CRON_JOB,
    ("coordination.k8s.io", "Lease"): misc.LEASE,
    ("discovery.k8s.io", "EndpointSlice"): misc.ENDPOINT_SLICE,
    ("policy", "PodDisruptionBudget"): misc.POD_DISRUPTION_BUDGET,
    ("rbac.authorization.k8s.io", "RoleBinding"): misc.ROLE_BINDING,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): misc.CLUSTER_ROLE_BINDING,
    ("scheduling.k8s.io", "PriorityClass"): misc.PRIORITY_CLASS,
}

_BUILTIN_KINDS = frozenset((r.group, r.kind) for r in BUILTIN)
_ZERO_TIME = "0001-01-01T00:00:00Z"


def _created_at(obj: JSON, ctx: Context) -> list[Any]:
    created = parse_time(dig(obj, "metadata", "creationTimestamp"))
    return [name_of(obj), created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if created else _ZERO_TIME]


def default_printer() -> Printer:
    """``rest.NewDefaultTableConvertor``: Name and Created At."""
    return Printer((NAME, Column("Created At", "date", (META, "creationTimestamp"))), _created_at)


_DEFAULT = default_printer()


def has_printer(group: str, kind: str) -> bool:
    """Whether Kubernetes has a dedicated printer for this built-in kind (else the default convertor is used)."""
    return (group, kind) in PRINTERS


def printer_for(group: str, kind: str, custom_columns: list[JSON] | None = None) -> Printer:
    """The printer ``table_for`` uses for this kind (see the module docstring for the order)."""
    printer = PRINTERS.get((group, kind))
    if printer is not None:
        return printer
    if custom_columns is not None or (group, kind) not in _BUILTIN_KINDS:
        return custom_printer(custom_columns)
    return _DEFAULT


def partial_object_metadata(obj: Mapping[str, Any]) -> JSON:
    """The ``PartialObjectMetadata`` of an object: its full ``metadata`` under meta.k8s.io/v1."""
    metadata = obj.get("metadata")
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata if isinstance(metadata, dict) else {}}


def _row(printer: Printer, obj: JSON, ctx: Context, include_object: str) -> JSON:
    row: JSON = {"cells": printer.cells(obj, ctx)}
    if printer.conditions is not None:
        conditions = printer.conditions(obj)
        if conditions:
            row["conditions"] = conditions
    if include_object == "Object":
        row["object"] = obj
    elif include_object == "Metadata":
        row["object"] = partial_object_metadata(obj)
    return row


def table_for(
    group: str,
    kind: str,
    objects: list[JSON],
    *,
    include_object: str = "Metadata",
    now: datetime | None = None,
    custom_columns: list[JSON] | None = None,
    no_headers: bool = False,
) -> JSON:
    """A ``meta.k8s.io/v1`` Table of ``objects`` (all of one kind), one row each, in the given order.

    ``include_object``: "Metadata" (or "") for PartialObjectMetadata rows, "Object" for the full objects,
    "None" for no objects; anything else raises BadRequest as the API server does. ``now`` fixes the clock for
    ages. ``custom_columns`` are a CRD version's ``additionalPrinterColumns``. ``no_headers`` leaves out
    ``columnDefinitions`` (watch events after the first).
    """
    include = include_object or "Metadata"
    if include not in INCLUDE_OBJECT:
        raise BadRequest(f'unrecognized includeObject value: "{include_object}"')
    printer = printer_for(group, kind, custom_columns)
    ctx = Context(now if now is not None else timeutil.now())
    if printer.prepare is not None:
        printer.prepare(objects, ctx)
    table: JSON = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}}
    if not no_headers:
        table["columnDefinitions"] = [column.definition() for column in printer.columns]
    table["rows"] = [_row(printer, obj, ctx, include) for obj in objects]
    return table
