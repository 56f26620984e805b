"""The resource registry: every kind the API server serves, and how it is addressed.

One ``Resource`` per group/version/resource. Discovery documents, OpenAPI paths, REST routes, storage keys,
tables, defaults and validation all hang off these entries, so adding a kind starts here. Custom resources
defined by CRDs are added at run time with ``Registry.add``/``Registry.remove``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class Subresource:
    name: str  # "status", "scale", "log", ...
    kind: str  # response kind ("Pod" for status, "Scale" for scale)
    verbs: tuple[str, ...]
    group: str = ""  # the response kind's group when it differs from the parent's ("autoscaling" for Scale)
    version: str = ""


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = ()
    # Name of the OpenAPI definition ("io.k8s.api.apps.v1.Deployment"); empty for custom resources.
    definition: str = ""
    # Stored objects are kept only in memory and never persisted (e.g. review requests are not stored at all).
    stored: bool = True
    custom: bool = False
    # Another resource whose storage this one shares, as (group, plural): events.k8s.io events are core events.
    stored_as: tuple[str, str] | None = None
    # Custom resources: the CRD version's openAPIV3Schema and its scale subresource paths.
    schema: Any = field(default=None, compare=False, hash=False)
    scale_paths: Any = field(default=None, compare=False, hash=False)
    selectable_fields: tuple[str, ...] = ()  # extra field-selector labels (``.spec.color``), from the CRD

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def qualified(self) -> str:
        """``deployments.apps``, or ``pods`` for the core group: how errors name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None

    def _key_base(self) -> str:
        group, plural = self.stored_as or (self.group, self.plural)
        return f"/{group or 'core'}/{plural}/"

    def key_prefix(self, namespace: str = "") -> str:
        """Store key prefix for listing: all namespaces when ``namespace`` is empty."""
        base = self._key_base()
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def key(self, namespace: str, name: str) -> str:
        base = self._key_base()
        return f"{base}{namespace}/{name}" if self.namespaced else f"{base}{name}"


def _status(kind: str) -> Subresource:
    return Subresource("status", kind, ("get", "patch", "update"))


_SCALE = Subresource("scale", "Scale", ("get", "patch", "update"), group="autoscaling", version="v1")


def _core(plural: str, kind: str, namespaced: bool = True, **kw: object) -> Resource:
    return Resource("", "v1", plural, kind, namespaced, definition=f"io.k8s.api.core.v1.{kind}", **kw)  # type: ignore[arg-type]


def _grp(group: str, version: str, pkg: str, plural: str, kind: str, namespaced: bool = True, **kw: object) -> Resource:
    return Resource(group, version, plural, kind, namespaced, definition=f"io.k8s.api.{pkg}.{version}.{kind}", **kw)  # type: ignore[arg-type]


BUILTIN: tuple[Resource, ...] = (
    # core/v1
    _core("namespaces", "Namespace", False, short_names=("ns",), verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
          subresources=(_status("Namespace"), Subresource("finalize", "Namespace", ("update",)))),
    _core("pods", "Pod", short_names=("po",), categories=("all",), subresources=(
        Subresource("attach", "PodAttachOptions", ("create", "get")),
        Subresource("binding", "Binding", ("create",)),
        Subresource("ephemeralcontainers", "Pod", ("get", "patch", "update")),
        Subresource("eviction", "Eviction", ("create",), group="policy", version="v1"),
        Subresource("exec", "PodExecOptions", ("create", "get")),
        Subresource("log", "Pod", ("get",)),
        Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
        Subresource("proxy", "PodProxyOptions", ("create", "delete", "get", "patch", "update")),
        Subresource("resize", "Pod", ("get", "patch", "update")),
        _status("Pod"))),
    _core("bindings", "Binding", verbs=("create",)),
    _core("nodes", "Node", False, short_names=("no",), subresources=(
        Subresource("proxy", "NodeProxyOptions", ("create", "delete", "get", "patch", "update")), _status("Node"))),
    _core("services", "Service", short_names=("svc",), categories=("all",), verbs=(
        "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
        subresources=(Subresource("proxy", "ServiceProxyOptions", ("create", "delete", "get", "patch", "update")),
                      _status("Service"))),
    _core("endpoints", "Endpoints", short_names=("ep",), singular="endpoints"),
    _core("configmaps", "ConfigMap", short_names=("cm",)),
    _core("secrets", "Secret"),
    _core("serviceaccounts", "ServiceAccount", short_names=("sa",),
          subresources=(Subresource("token", "TokenRequest", ("create",), group="authentication.k8s.io", version="v1"),)),
    _core("events", "Event", short_names=("ev",)),
    _core("persistentvolumes", "PersistentVolume", False, short_names=("pv",), subresources=(_status("PersistentVolume"),)),
    _core("persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",),
          subresources=(_status("PersistentVolumeClaim"),)),
    _core("replicationcontrollers", "ReplicationController", short_names=("rc",), categories=("all",),
          subresources=(_SCALE, _status("ReplicationController"))),
    _core("resourcequotas", "ResourceQuota", short_names=("quota",), subresources=(_status("ResourceQuota"),)),
    _core("limitranges", "LimitRange", short_names=("limits",)),
    # apps/v1
    _grp("apps", "v1", "apps", "deployments", "Deployment", short_names=("deploy",), categories=("all",),
         subresources=(_SCALE, _status("Deployment"))),
    _grp("apps", "v1", "apps", "replicasets", "ReplicaSet", short_names=("rs",), categories=("all",),
         subresources=(_SCALE, _status("ReplicaSet"))),
    _grp("apps", "v1", "apps", "statefulsets", "StatefulSet", short_names=("sts",), categories=("all",),
         subresources=(_SCALE, _status("StatefulSet"))),
    _grp("apps", "v1", "apps", "daemonsets", "DaemonSet", short_names=("ds",), categories=("all",),
         subresources=(_status("DaemonSet"),)),
    _grp("apps", "v1", "apps", "controllerrevisions", "ControllerRevision"),
    # batch/v1
    _grp("batch", "v1", "batch", "jobs", "Job", categories=("all",), subresources=(_status("Job"),)),
    _grp("batch", "v1", "batch", "cronjobs", "CronJob", short_names=("cj",), categories=("all",),
         subresources=(_status("CronJob"),)),
    # coordination.k8s.io/v1
    _grp("coordination.k8s.io", "v1", "coordination", "leases", "Lease"),
    # discovery.k8s.io/v1
    _grp("discovery.k8s.io", "v1", "discovery", "endpointslices", "EndpointSlice"),
    # events.k8s.io/v1
    _grp("events.k8s.io", "v1", "events", "events", "Event", short_names=("ev",), stored_as=("", "events")),
    # policy/v1
    _grp("policy", "v1", "policy", "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",),
         subresources=(_status("PodDisruptionBudget"),)),
    # rbac.authorization.k8s.io/v1
    _grp("rbac.authorization.k8s.io", "v1", "rbac", "roles", "Role"),
    _grp("rbac.authorization.k8s.io", "v1", "rbac", "rolebindings", "RoleBinding"),
    _grp("rbac.authorization.k8s.io", "v1", "rbac", "clusterroles", "ClusterRole", False),
    _grp("rbac.authorization.k8s.io", "v1", "rbac", "clusterrolebindings", "ClusterRoleBinding", False),
    # storage.k8s.io/v1
    _grp("storage.k8s.io", "v1", "storage", "storageclasses", "StorageClass", False, short_names=("sc",)),
    # scheduling.k8s.io/v1
    _grp("scheduling.k8s.io", "v1", "scheduling", "priorityclasses", "PriorityClass", False, short_names=("pc",)),
    # authorization.k8s.io/v1: reviews are answered, never stored
    _grp("authorization.k8s.io", "v1", "authorization", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
         verbs=("create",), stored=False),
    _grp("authorization.k8s.io", "v1", "authorization", "selfsubjectrulesreviews", "SelfSubjectRulesReview", False,
         verbs=("create",), stored=False),
    # authentication.k8s.io/v1
    _grp("authentication.k8s.io", "v1", "authentication", "selfsubjectreviews", "SelfSubjectReview", False,
         verbs=("create",), stored=False),
    # apiextensions.k8s.io/v1
    Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
             short_names=("crd", "crds"), categories=("api-extensions",),
             subresources=(_status("CustomResourceDefinition"),),
             definition="io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"),
)

# Group preference order in discovery (as kube-apiserver orders them).
GROUP_ORDER = (
    "", "apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "autoscaling", "batch",
    "policy", "rbac.authorization.k8s.io", "storage.k8s.io", "apiextensions.k8s.io", "scheduling.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io",
)


@dataclass
class Registry:
    """Lookup of resources by group/version/plural and by kind. Built-ins plus CRD-defined resources."""

    resources: list[Resource] = field(default_factory=lambda: list(BUILTIN))

    def __post_init__(self) -> None:
        self._reindex()

    def _reindex(self) -> None:
        self._by_path = {(r.group, r.version, r.plural): r for r in self.resources}
        self._by_kind = {(r.group, r.version, r.kind): r for r in self.resources}

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def get(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> Resource | None:
        return self._by_kind.get((group, version, kind))

    def by_api_version(self, api_version: str, kind: str) -> Resource | None:
        group, _, version = api_version.rpartition("/")
        return self._by_kind.get((group, version, kind))

    def groups(self) -> list[tuple[str, list[str]]]:
        """(group, versions) in preference order, core group first."""
        seen: dict[str, list[str]] = {}
        for r in self.resources:
            versions = seen.setdefault(r.group, [])
            if r.version not in versions:
                versions.append(r.version)
        order = {g: i for i, g in enumerate(GROUP_ORDER)}
        return sorted(seen.items(), key=lambda gv: (order.get(gv[0], len(order)), gv[0]))

    def in_group_version(self, group: str, version: str) -> list[Resource]:
        return [r for r in self.resources if r.group == group and r.version == version]

    def add(self, resource: Resource) -> None:
        self.resources = [r for r in self.resources
                          if (r.group, r.version, r.plural) != (resource.group, resource.version, resource.plural)]
        self.resources.append(resource)
        self._reindex()

    def remove(self, group: str, version: str, plural: str) -> None:
        self.resources = [r for r in self.resources if (r.group, r.version, r.plural) != (group, version, plural)]
        self._reindex()
