"""Discovery documents (`/api`, `/apis`, `/apis/<group>`, `/api/v1`, `/apis/<group>/<version>`).

Every document here is a pure function of the resource registry: the HTTP layer decides which one a request
wants (``wants_aggregated`` reads the Accept header) and serialises the returned dict. Shapes follow
kube-apiserver's own documents (``kubernetes/kubernetes:api/discovery/*.json``): resources and subresources sorted
by name, a subresource's ``responseKind`` carries group/version only when they differ from its parent's (Scale,
Eviction, TokenRequest), and versions are listed in Kubernetes' preference order (GA before beta before alpha,
higher numbers first), the first one being the preferred version. kubectl and the Python client pick REST
mappings, short names (``deploy``), categories (``kubectl get all``) and scopes from these documents, so a
resource missing here does not exist for them.
"""

from __future__ import annotations

import re
from typing import Any

from nanokube.api.registry import Registry, Resource, Subresource

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_STABILITY = {None: 0, "beta": 1, "alpha": 2}


def wants_aggregated(accept: str) -> bool:
    """True when an Accept header asks for the aggregated (v2) discovery document, as client-go's does."""
    for media_range in accept.split(","):
        kind, *raw_params = (part.strip() for part in media_range.split(";"))
        params = dict(p.partition("=")[::2] for p in raw_params)
        if (kind == "application/json" and params.get("g") == "apidiscovery.k8s.io"
                and params.get("v") == "v2" and params.get("as") == "APIGroupDiscoveryList"):
            return True
    return False


def version_sort_key(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version priority: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > anything else (alphabetical)."""
    match = _VERSION_RE.match(version)
    if match is None:
        return (3, 0, 0, version)
    major, stability, minor = match.groups()
    return (_STABILITY[stability], -int(major), -int(minor or 0), version)


def resource_verbs(resource: Resource) -> list[str]:
    """The verbs a resource advertises: review-style kinds that are never stored can only be created."""
    if not resource.stored:
        return ["create"]
    return list(resource.verbs)


def _groups(registry: Registry) -> list[tuple[str, list[str]]]:
    return [(group, sorted(versions, key=version_sort_key)) for group, versions in registry.groups()]


def _gv(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _sub_gvk(parent: Resource, sub: Subresource) -> tuple[str, str]:
    """(group, version) of a subresource's kind, empty when it is the parent's (as the real server writes it)."""
    group = sub.group or parent.group
    version = sub.version or parent.version
    if (group, version) == (parent.group, parent.version):
        return "", ""
    return group, version


# ---- aggregated discovery (apidiscovery.k8s.io/v2) ----

def _aggregated_subresource(parent: Resource, sub: Subresource) -> dict[str, Any]:
    group, version = _sub_gvk(parent, sub)
    return {"subresource": sub.name, "responseKind": {"group": group, "version": version, "kind": sub.kind},
            "verbs": list(sub.verbs)}


def _aggregated_resource(resource: Resource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource.plural,
        "responseKind": {"group": "", "version": "", "kind": resource.kind},
        "scope": "Namespaced" if resource.namespaced else "Cluster",
        "singularResource": resource.singular_name,
        "verbs": resource_verbs(resource),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    subs = sorted(resource.subresources, key=lambda s: s.name)
    if subs:
        entry["subresources"] = [_aggregated_subresource(resource, s) for s in subs]
    return entry


def aggregated(registry: Registry, core: bool) -> dict[str, Any]:
    """APIGroupDiscoveryList for ``/api`` (``core=True``: the core group only) or ``/apis`` (every other group).

    Serve it with ``Content-Type: AGGREGATED_CONTENT_TYPE`` exactly; any other content type makes clients parse
    the body as legacy APIVersions/APIGroupList.
    """
    items = []
    for group, versions in _groups(registry):
        if (group == "") != core:
            continue
        entries = []
        for version in versions:
            resources = sorted(registry.in_group_version(group, version), key=lambda r: r.plural)
            entries.append({"version": version, "freshness": "Current",
                            "resources": [_aggregated_resource(r) for r in resources]})
        items.append({"metadata": {"name": group}, "versions": entries})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": items}


# ---- legacy discovery (meta/v1 APIVersions, APIGroupList, APIGroup, APIResourceList) ----

def api_versions(server_address: str) -> dict[str, Any]:
    """APIVersions for ``GET /api``; ``server_address`` is the ``host:port`` clients reached us on."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _api_group(group: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": _gv(group, v), "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    """APIGroupList for ``GET /apis``: every group but the core one, in preference order."""
    groups = [_api_group(g, vs) for g, vs in _groups(registry) if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    """APIGroup for ``GET /apis/<group>``; None (answer 404) for an unknown group or the core group."""
    for name, versions in _groups(registry):
        if name == group and group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(name, versions)}
    return None


def _legacy_resource(resource: Resource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": resource.plural,
        "singularName": resource.singular_name,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": resource_verbs(resource),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    return entry


def _legacy_subresource(parent: Resource, sub: Subresource) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": f"{parent.plural}/{sub.name}", "singularName": "",
                             "namespaced": parent.namespaced, "kind": sub.kind, "verbs": list(sub.verbs)}
    group, version = _sub_gvk(parent, sub)
    if group or version:
        entry["group"] = group
        entry["version"] = version
    return entry


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """APIResourceList for ``GET /api/v1`` or ``/apis/<group>/<version>``: one entry per resource and one per
    subresource (``pods/log``, ``pods/eviction`` as policy/v1 Eviction, ``deployments/scale`` as autoscaling/v1
    Scale). None (answer 404) when the group-version is not served."""
    resources = registry.in_group_version(group, version)
    if not resources:
        return None
    entries = []
    for resource in resources:
        entries.append(_legacy_resource(resource))
        entries.extend(_legacy_subresource(resource, s) for s in resource.subresources)
    entries.sort(key=lambda e: e["name"])
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": _gv(group, version),
            "resources": entries}
