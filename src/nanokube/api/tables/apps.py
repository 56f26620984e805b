"""Printers for apps/v1: Deployment, ReplicaSet, StatefulSet, DaemonSet and ControllerRevision.

READY is ``ready/desired`` for Deployments and StatefulSets, separate integer columns for ReplicaSets and
DaemonSets, as ``printers.go`` declares them. The wide SELECTOR of a Deployment is the bare selector string
(empty for an empty selector, ``<invalid>`` for a bad one) while the other kinds use ``FormatLabelSelector``
(``<none>``/``<error>``): the two code paths differ in Kubernetes and so they differ here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nanokube.api.labels import selector_from_label_selector
from nanokube.api.tables.common import (
    AGE,
    CONTAINERS,
    IMAGES,
    JSON,
    NAME,
    NONE,
    Column,
    Context,
    Printer,
    age,
    container_cells,
    dig,
    format_labels,
    format_selector,
    items,
    name_of,
    number,
    template_containers,
    wide,
)

_APPS = "io.k8s.api.apps.v1."


def _deployment_selector(selector: Any) -> str:
    try:
        return str(selector_from_label_selector(selector if isinstance(selector, Mapping) else None))
    except ValueError:
        return "<invalid>"


def _deployment_cells(obj: JSON, ctx: Context) -> list[Any]:
    return [
        name_of(obj), f"{number(obj, 'status', 'readyReplicas')}/{number(obj, 'spec', 'replicas')}",
        number(obj, "status", "updatedReplicas"), number(obj, "status", "availableReplicas"), age(obj, ctx),
        *container_cells(template_containers(obj)), _deployment_selector(dig(obj, "spec", "selector")),
    ]


DEPLOYMENT = Printer((
    NAME,
    Column("Ready", doc="Number of the pod with ready state"),
    Column("Up-to-date", doc=(_APPS + "DeploymentStatus", "updatedReplicas")),
    Column("Available", doc=(_APPS + "DeploymentStatus", "availableReplicas")),
    AGE, CONTAINERS, IMAGES,
    wide("Selector", (_APPS + "DeploymentSpec", "selector")),
), _deployment_cells)


def _replica_set_cells(obj: JSON, ctx: Context) -> list[Any]:
    return [
        name_of(obj), number(obj, "spec", "replicas"), number(obj, "status", "replicas"),
        number(obj, "status", "readyReplicas"), age(obj, ctx),
        *container_cells(template_containers(obj)), format_selector(dig(obj, "spec", "selector")),
    ]


REPLICA_SET = Printer((
    NAME,
    Column("Desired", "integer", (_APPS + "ReplicaSetSpec", "replicas")),
    Column("Current", "integer", (_APPS + "ReplicaSetStatus", "replicas")),
    Column("Ready", "integer", (_APPS + "ReplicaSetStatus", "readyReplicas")),
    AGE, CONTAINERS, IMAGES,
    wide("Selector", (_APPS + "ReplicaSetSpec", "selector")),
), _replica_set_cells)


STATEFUL_SET = Printer((
    NAME, Column("Ready", doc="Number of the pod with ready state"), AGE, CONTAINERS, IMAGES,
), lambda obj, ctx: [
    name_of(obj), f"{number(obj, 'status', 'readyReplicas')}/{number(obj, 'spec', 'replicas')}", age(obj, ctx),
    *container_cells(template_containers(obj)),
])


def _daemon_set_cells(obj: JSON, ctx: Context) -> list[Any]:
    return [
        name_of(obj), number(obj, "status", "desiredNumberScheduled"), number(obj, "status", "currentNumberScheduled"),
        number(obj, "status", "numberReady"), number(obj, "status", "updatedNumberScheduled"),
        number(obj, "status", "numberAvailable"), format_labels(dig(obj, "spec", "template", "spec", "nodeSelector")),
        age(obj, ctx), *container_cells(template_containers(obj)), format_selector(dig(obj, "spec", "selector")),
    ]


DAEMON_SET = Printer((
    NAME,
    Column("Desired", "integer", (_APPS + "DaemonSetStatus", "desiredNumberScheduled")),
    Column("Current", "integer", (_APPS + "DaemonSetStatus", "currentNumberScheduled")),
    Column("Ready", "integer", (_APPS + "DaemonSetStatus", "numberReady")),
    Column("Up-to-date", "integer", (_APPS + "DaemonSetStatus", "updatedNumberScheduled")),
    Column("Available", "integer", (_APPS + "DaemonSetStatus", "numberAvailable")),
    Column("Node Selector", doc=("io.k8s.api.core.v1.PodSpec", "nodeSelector")),
    AGE, CONTAINERS, IMAGES,
    wide("Selector", (_APPS + "DaemonSetSpec", "selector")),
), _daemon_set_cells)


def controller_name(obj: JSON) -> str:
    """The controlling owner as ``kind.group/name`` in lower case (``daemonset.apps/web``), else ``<none>``."""
    for ref in items(obj, "metadata", "ownerReferences"):
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            group = str(ref.get("apiVersion", "")).rpartition("/")[0] if "/" in str(ref.get("apiVersion", "")) else ""
            kind = str(ref.get("kind", ""))
            name = str(ref.get("name", ""))
            if not kind and not group:
                return name
            return (f"{kind}.{group}" if group else kind).lower() + "/" + name
    return NONE


CONTROLLER_REVISION = Printer((
    NAME,
    Column("Controller", doc="Controller of the object"),
    Column("Revision", doc=(_APPS + "ControllerRevision", "revision")),
    AGE,
), lambda obj, ctx: [name_of(obj), controller_name(obj), number(obj, "revision"), age(obj, ctx)])
