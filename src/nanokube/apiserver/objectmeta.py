"""The metadata rules every write shares: whose object this is, which fields only the server sets, and
whether a write changes anything at all.

``ObjectStorage`` runs these on each create and update before the kind's strategy gets the object:
``check_identity`` settles apiVersion, kind and namespace against the URL, ``check_name`` the name,
``keep_system_fields`` puts back what a client may not change (uid, timestamps, generation, managedFields,
resourceVersion), and ``unchanged`` spots a no-op write, which kube answers with the live object and no new
revision. All pure, so the rules are tested without a store.
"""

from __future__ import annotations

from typing import Any

from nanokube.api.errors import BadRequest
from nanokube.api.registry import Resource

JSON = dict[str, Any]

# metadata fields only the server sets; a client's values are dropped on create.
SYSTEM_FIELDS = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                 "resourceVersion", "generation", "selfLink", "managedFields")
# the ones an update carries over from the live object.
_KEPT_ON_UPDATE = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


def check_identity(resource: Resource, namespace: str, obj: JSON) -> JSON:
    """Refuse a body of another apiVersion, kind or namespace than the URL's; fill them in and return the
    object's metadata (created when missing)."""
    if not isinstance(obj, dict):
        raise BadRequest("the body of the request must be a JSON object")
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise BadRequest("metadata must be an object")
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if api_version and api_version != resource.api_version:
        raise BadRequest(f"the API version in the data ({api_version}) does not match the expected API "
                         f"version ({resource.api_version})")
    if kind and kind != resource.kind:
        raise BadRequest(f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})")
    obj["apiVersion"] = resource.api_version
    obj["kind"] = resource.kind
    if resource.namespaced:
        body_ns = meta.get("namespace")
        if body_ns and body_ns != namespace:
            raise BadRequest("the namespace of the provided object does not match the namespace sent on the "
                             "request")
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    return meta


def check_name(name: str, desired: JSON) -> None:
    """Refuse a body naming another object than the URL; fill the name in."""
    meta = desired.setdefault("metadata", {}) if isinstance(desired, dict) else None
    if meta is None:
        raise BadRequest("the body of the request must be a JSON object")
    body_name = meta.get("name")
    if body_name and body_name != name:
        raise BadRequest(f"the name of the object ({body_name}) does not match the name on the URL ({name})")
    meta["name"] = name


def keep_system_fields(desired: JSON, live: JSON) -> None:
    """Put the live object's server-set metadata back into an update's ``desired``."""
    meta = desired["metadata"]
    live_meta = live["metadata"]
    for name in _KEPT_ON_UPDATE:
        if name in live_meta:
            meta[name] = live_meta[name]
        else:
            meta.pop(name, None)
    meta.pop("selfLink", None)
    if live_meta.get("managedFields"):
        meta["managedFields"] = live_meta["managedFields"]
    else:
        meta.pop("managedFields", None)
    meta["resourceVersion"] = live_meta.get("resourceVersion")
    if meta.get("generateName") is None and live_meta.get("generateName"):
        meta["generateName"] = live_meta["generateName"]


def unchanged(desired: JSON, live: JSON, *, managed_fields: bool = False) -> bool:
    """True when a write would change nothing (resourceVersion aside; managedFields only when the client
    wrote them itself: the timestamps of a write that changes nothing else do not count)."""
    skip = ("resourceVersion",) if managed_fields else ("resourceVersion", "managedFields")
    a = desired["metadata"]
    b = live["metadata"]
    if {k: v for k, v in a.items() if k not in skip} != {k: v for k, v in b.items() if k not in skip}:
        return False
    return {k: v for k, v in desired.items() if k != "metadata"} == {k: v for k, v in live.items() if k != "metadata"}
