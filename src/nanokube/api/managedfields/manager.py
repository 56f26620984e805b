"""``metadata.managedFields`` entries, and the ownership update after a non-apply write (create, update, patch).

Entries decode into ``Managers`` keyed by identity: the JSON kube builds from the entry's manager, operation,
apiVersion (Update only: one applier keeps one entry across versions) and subresource, in Go's field order,
e.g. ``{"manager":"kubectl-edit","operation":"Update","apiVersion":"apps/v1"}``. Encoding writes them back
sorted as kube sorts them (Apply before Update, then by time, manager, apiVersion, subresource).

``update`` mirrors kube's field manager chain for Update:

* the managedFields the client sent win when non-empty (that is how kubectl's client-side-apply migration
  rewrites them); ``[]`` or ``[{}]`` resets them; otherwise the live object's are kept. Subresources always
  keep the live ones;
* an existing object without managedFields stays untracked (it predates tracking); a create is always tracked
  and is compared against the kind's zero object;
* the writer's entry gains every field the write added or changed (never the server's own metadata, nor the
  reset fields - ``status`` on the main resource, ``spec`` on ``/status``) and its time is bumped only when it
  gained something; other managers lose what changed or disappeared; entries left empty are dropped;
* more than ten Update entries fold the oldest into ``ancient-changes``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from nanokube.api.managedfields.fieldset import FieldSet, FieldsV1Error, field, go_json
from nanokube.api.managedfields.shape import Pos, root, zero_object
from nanokube.api.managedfields.updater import Entry, Managers, smd_update
from nanokube.api.objects import deep_copy
from nanokube.util.timeutil import parse_rfc3339

MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"
BEFORE_FIRST_APPLY = "before-first-apply"
FIELD_MANAGER_MAX_LENGTH = 128
_CURRENT = "current-operation"

# Server-owned metadata no manager is ever recorded for (kube's stripMetaManager).
STRIPPED = FieldSet([(field("apiVersion"),), (field("kind"),), (field("metadata"),)] + [
    (field("metadata"), field(name)) for name in (
        "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation", "managedFields",
        "resourceVersion")])

_STATUS_RESETS: dict[str, tuple[tuple[str, ...], ...]] = {
    "io.k8s.api.apps.v1.Deployment": (("metadata", "labels"),),
    "io.k8s.api.core.v1.Pod": (("metadata", "deletionTimestamp"), ("metadata", "ownerReferences")),
}


class ManagedFieldsError(ValueError):
    """managedFields kube could not decode (a bad operation, apiVersion, fieldsType or fieldsV1)."""


def default_manager(user_agent: str) -> str:
    """The manager of a write that names none: the User-Agent up to its first ``/``, printable characters only,
    cut at 128 bytes (``kubectl/v1.37.0 (linux/amd64)`` -> ``kubectl``). Empty becomes ``unknown`` when recorded."""
    out: list[str] = []
    size = 0
    for char in user_agent.split("/", 1)[0]:
        if not char.isprintable():  # Python's printable is Go's unicode.IsPrint
            continue
        size += len(char.encode())
        if size > FIELD_MANAGER_MAX_LENGTH:
            break
        out.append(char)
    return "".join(out)


def identity(manager: str, operation: str, api_version: str, subresource: str = "") -> str:
    """kube's manager identifier (the map key of an entry)."""
    doc: dict[str, str] = {}
    if manager:
        doc["manager"] = manager
    doc["operation"] = operation
    if operation != "Apply" and api_version:
        doc["apiVersion"] = api_version
    if subresource:
        doc["subresource"] = subresource
    return go_json(doc)


def reset_fields(definition: str | None, subresource: str = "", *, pos: Pos | None = None) -> FieldSet:
    """Fields a write through ``subresource`` may not set, so nobody is recorded for them: ``status`` on the main
    resource of a kind that has one (custom resources: assumes a status subresource), ``spec`` (and a few
    per-kind metadata fields) on ``/status``."""
    if subresource == "status":
        paths = [("spec",), *_STATUS_RESETS.get(definition or "", ())]
    elif subresource:
        return FieldSet()
    else:
        here = pos if pos is not None else root(definition)
        has_status = here.ctx.custom or "status" in here.node.fields
        paths = [("status",)] if has_status else []
    return FieldSet(tuple(field(p) for p in path) for path in paths)


# -- entries -------------------------------------------------------------------------------------------------------


def decode(entries: Any) -> Managers:
    """The managers of a managedFields list (None or absent is none); ManagedFieldsError when kube would refuse."""
    managers: Managers = {}
    for i, entry in enumerate(entries or ()):
        if not isinstance(entry, dict):
            raise ManagedFieldsError(f"managed fields entry {i} is not an object")
        operation = entry.get("operation")
        if operation not in ("Apply", "Update"):
            raise ManagedFieldsError("operation must be `Apply` or `Update`")
        api_version = entry.get("apiVersion") or ""
        if not api_version:
            raise ManagedFieldsError("apiVersion must not be empty")
        fields_type = entry.get("fieldsType") or ""
        if fields_type != "FieldsV1":
            raise ManagedFieldsError(f"missing fieldsType in managed fields entry {i}" if not fields_type
                                     else f"invalid fieldsType {fields_type!r} in managed fields entry {i}")
        try:
            fields = FieldSet.from_fields_v1(entry.get("fieldsV1"))
        except FieldsV1Error as err:
            raise ManagedFieldsError(f"error decoding set: {err}") from None
        key = identity(str(entry.get("manager") or ""), operation, api_version, str(entry.get("subresource") or ""))
        managers[key] = Entry(fields, api_version, operation == "Apply", entry.get("time"))
    return managers


def encode(managers: Managers) -> list[dict[str, Any]]:
    """managedFields entries in kube's order and key order. An empty list means: no managedFields."""
    out: list[dict[str, Any]] = []
    for key, entry in managers.items():
        who = _who(key)
        doc: dict[str, Any] = {}
        if who.get("manager"):
            doc["manager"] = who["manager"]
        doc["operation"] = "Apply" if entry.applied else "Update"
        doc["apiVersion"] = entry.api_version
        if entry.time:
            doc["time"] = entry.time
        doc["fieldsType"] = "FieldsV1"
        doc["fieldsV1"] = entry.fields.to_fields_v1()
        if who.get("subresource"):
            doc["subresource"] = who["subresource"]
        out.append(doc)
    out.sort(key=lambda d: (d["operation"], _seconds(d.get("time")), d.get("manager", ""), d["apiVersion"],
                            d.get("subresource", "")))
    return out


def _who(key: str) -> dict[str, str]:
    try:
        doc = json.loads(key)
    except ValueError:
        return {"manager": key}
    return doc if isinstance(doc, dict) else {"manager": key}


def describe(key: str) -> str:
    """A manager as kube names it in conflicts: ``"kubectl"``, ``"one" using apps/v1``,
    ``"kubelet" with subresource "status" using v1``."""
    who = _who(key)
    text = go_json(who.get("manager", ""))
    if who.get("subresource"):
        text += f" with subresource {go_json(who['subresource'])}"
    if who.get("operation") == "Update":
        text += f" using {who.get('apiVersion', '')}"
    return text


def _seconds(time: Any) -> int:
    if not isinstance(time, str) or not time:
        return 0
    try:
        return int(parse_rfc3339(time).timestamp())
    except ValueError:
        return 0


def strip(managers: Managers, key: str) -> Managers:
    """The server's metadata taken out of one manager's fields (the entry dropped if nothing is left)."""
    entry = managers.get(key)
    if entry is None:
        return managers
    fields = entry.fields - STRIPPED
    out = dict(managers)
    if fields:
        out[key] = replace(entry, fields=fields)
    else:
        del out[key]
    return out


def cap(managers: Managers, limit: int = MAX_UPDATE_MANAGERS) -> Managers:
    """At most ``limit`` Update entries: the oldest fold into one ``ancient-changes`` entry per apiVersion."""
    updaters = [k for k, e in managers.items() if not e.applied]
    if len(updaters) <= limit:
        return managers
    out = dict(managers)
    updaters.sort(key=lambda k: (_seconds(managers[k].time), k))
    first_of: dict[str, str] = {}
    count = len(updaters)
    for key in updaters:
        if count <= limit:
            break
        entry = out[key]
        bucket = identity(ANCIENT_CHANGES, "Update", entry.api_version)
        first = first_of.get(entry.api_version)
        if first is None:
            first_of[entry.api_version] = key
            continue
        if bucket not in out:
            out[bucket] = out.pop(first)
        out[bucket] = Entry(entry.fields | out[bucket].fields, entry.api_version, False, entry.time)
        del out[key]
        count -= 1
    return out


# -- Update --------------------------------------------------------------------------------------------------------


def record_update(old: Any, new: Any, managers: Managers, key: str, *, api_version: str, now: str,
                  reset: FieldSet, pos: Pos) -> Managers:
    """Managers after ``key`` (an Update identity) wrote ``new`` over ``old`` (both without managedFields)."""
    after, diff = smd_update(old, new, managers, _CURRENT, force=True, reset=reset, pos=pos)
    gained = diff.changed - STRIPPED
    if gained:
        previous = after.get(key)
        after[key] = Entry(gained | previous.fields if previous else gained, api_version, False, now)
    return cap(after)


def without_managed_fields(obj: Any) -> Any:
    """A copy of ``obj`` without ``metadata.managedFields``."""
    out = deep_copy(obj)
    meta = out.get("metadata") if isinstance(out, dict) else None
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return out


def _requested(new: Any) -> Any:
    meta = new.get("metadata") if isinstance(new, dict) else None
    return meta.get("managedFields") if isinstance(meta, dict) else None


def _start(live: Any, new: Any, subresource: str) -> Managers:
    """kube's decodeLiveOrNew: the client's entries when usable, ``[]``/``[{}]`` to reset, else the live ones."""
    live_entries = _requested(live)
    if not subresource:
        sent = _requested(new)
        if isinstance(sent, list) and (not sent or sent == [{}]):
            return {}
        try:
            managers = decode(sent)
        except ManagedFieldsError:
            managers = {}
        if managers:
            return managers
    try:
        return decode(live_entries)
    except ManagedFieldsError:
        return {}


def update(live: dict[str, Any] | None, new: dict[str, Any], manager: str, *, definition: str | None,
           api_version: str, now: str, subresource: str = "", schema: dict[str, Any] | None = None,
           reset: FieldSet | None = None) -> list[dict[str, Any]]:
    """The managedFields after a create (``live`` None), update or non-apply patch by ``manager``.

    ``new`` is the object about to be stored, defaulted, with the managedFields the client sent (if any);
    ``live`` is the stored object. Returns the entries to store; an empty list means the object carries none.
    """
    pos = root(definition, schema)
    if reset is None:
        reset = reset_fields(definition, subresource, pos=pos)
    managers = _start(live, new, subresource)
    creating = live is None or not (live.get("metadata") or {}).get("uid")
    if not managers and not creating:
        return []
    old = zero_object(pos) if live is None else without_managed_fields(live)
    key = identity(manager or "unknown", "Update", api_version, subresource)
    managers = record_update(old, without_managed_fields(new), managers, key, api_version=api_version, now=now,
                             reset=reset, pos=pos)
    return encode(managers)
