"""Parse a resource URL into what it names, as kube-apiserver's RequestInfoFactory does.

``/api/v1/namespaces/default/pods/web/log`` → group "", version v1, namespace default, resource pods,
name web, subresource log. ``/api/v1/namespaces/x`` names the namespace x itself, and
``/api/v1/namespaces/x/status`` its status. Unknown shapes return None (the caller answers 404).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RequestInfo:
    group: str
    version: str
    resource: str
    namespace: str = ""
    name: str = ""
    subresource: str = ""

    @property
    def is_collection(self) -> bool:
        return not self.name


_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


def parse_resource_path(path: str) -> RequestInfo | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in _NAMESPACE_SUBRESOURCES:
        namespace = rest[1]
        rest = rest[2:]
        if len(rest) > 3:
            return None
        return RequestInfo(group, version, rest[0], namespace, *rest[1:])
    if len(rest) > 3:
        return None
    return RequestInfo(group, version, rest[0], "", *rest[1:])
