"""Server-side apply with field ownership: the object an apply stores, its managedFields, and its conflicts.

``apply`` follows kube's field manager chain for an Apply:

1. the body may not carry managedFields (400); the live entries must decode (500 otherwise);
2. an existing object with no entries first gets a ``before-first-apply`` Update entry owning all it has;
3. the configuration is merged into the live object and becomes the applier's field set; what the applier
   applied last time and no longer applies is removed unless another manager owns it;
4. fields other managers own whose values the apply changes are conflicts (409, ``ApplyConflict``) unless
   ``force``, which moves them to the applier. For the manager ``kubectl``, conflicts that only restate the
   ``last-applied-configuration`` annotation (a client-side-apply object moving to server-side apply) are
   forced through, and the annotation is rewritten to the new configuration;
5. the entry's time moves only when the object changed.

Nulls the configuration sets (or removals leave behind) are dropped from the result; defaults are the
caller's to apply afterwards, as kube defaults the merged object.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from nanokube.api.errors import BadRequest, Conflict, InternalError
from nanokube.api.managedfields.fieldset import FieldSet, Path, go_json, path_string
from nanokube.api.managedfields.manager import (
    BEFORE_FIRST_APPLY,
    STRIPPED,
    ManagedFieldsError,
    decode,
    describe,
    encode,
    identity,
    record_update,
    reset_fields,
    strip,
    without_managed_fields,
)
from nanokube.api.managedfields.shape import ItemError, Pos, root, zero_object
from nanokube.api.managedfields.typed import compare, to_set
from nanokube.api.managedfields.updater import Conflicts, Managers, smd_apply
from nanokube.api.objects import deep_copy

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_ANNOTATIONS_LIMIT = 256 * 1024


class ApplyConflict(Exception):
    """Fields other managers own that an apply would change.

    ``conflicts`` is ``[(manager, field path)]`` (``("one", ".spec.replicas")``); ``whom`` names each conflict's
    manager as kube does (``"one" using apps/v1`` for an Update entry, ``"one"`` for an applier) and defaults to
    the quoted manager name."""

    def __init__(self, conflicts: list[tuple[str, str]], whom: list[str] | None = None,
                 keys: list[str] | None = None) -> None:
        self.conflicts = list(conflicts)
        self.whom = list(whom) if whom is not None else [json.dumps(m) for m, _ in self.conflicts]
        self._keys = list(keys) if keys is not None else list(self.whom)
        super().__init__(self.message())

    @classmethod
    def from_identities(cls, items: list[tuple[str, Path]]) -> ApplyConflict:
        names = [str(json.loads(key).get("manager", "")) for key, _ in items]
        return cls([(name, path_string(path)) for name, (_, path) in zip(names, items, strict=True)],
                   [describe(key) for key, _ in items], [key for key, _ in items])

    def message(self) -> str:
        """kube's text: ``Apply failed with 1 conflict: conflict with "one" using apps/v1: .spec.replicas``."""
        if len(self.conflicts) == 1:
            return f"Apply failed with 1 conflict: conflict with {self.whom[0]}: {self.conflicts[0][1]}"
        groups: dict[str, list[int]] = {}
        for i, key in enumerate(self._keys):
            groups.setdefault(key, []).append(i)
        lines: list[str] = []
        for key in sorted(groups):
            lines.append(f"conflicts with {self.whom[groups[key][0]]}:")
            lines.extend(f"- {self.conflicts[i][1]}" for i in groups[key])
        return f"Apply failed with {len(self.conflicts)} conflicts: " + "\n".join(lines)

    def causes(self) -> list[dict[str, str]]:
        """``details.causes`` of the 409: one ``FieldManagerConflict`` per field."""
        return [{"reason": "FieldManagerConflict", "message": f"conflict with {who}", "field": path}
                for who, (_, path) in zip(self.whom, self.conflicts, strict=True)]

    def error(self) -> Conflict:
        """The Status error to answer with (409 Conflict, the message and the causes)."""
        return Conflict(self.message(), details={"causes": self.causes()})


def fields_of(obj: dict[str, Any], definition: str | None, *, schema: dict[str, Any] | None = None) -> FieldSet:
    """The fields an object (or an applied configuration) sets, without the server's metadata."""
    return to_set(without_managed_fields(obj), root(definition, schema)) - STRIPPED


def apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str, *, force: bool,
          definition: str | None, api_version: str, now: str, subresource: str = "",
          schema: dict[str, Any] | None = None, reset: FieldSet | None = None) -> dict[str, Any]:
    """The object to store after ``manager`` applies ``applied`` over ``live`` (None: create), managedFields set.

    Raises ``ApplyConflict`` (answer with ``.error()``), ``BadRequest`` for a body with managedFields, and
    ``InternalError`` for undecodable live managedFields or list items without identity (as kube does)."""
    meta = applied.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields") is not None:
        raise BadRequest("metadata.managedFields must be nil")
    pos = root(definition, schema)
    if reset is None:
        reset = reset_fields(definition, subresource, pos=pos)
    try:
        managers = decode(((live or {}).get("metadata") or {}).get("managedFields"))
    except ManagedFieldsError as err:
        raise InternalError(f"failed to decode managed fields: {err}") from None
    base: dict[str, Any] = {} if live is None else without_managed_fields(live)
    if live is not None and not managers:
        first = identity(BEFORE_FIRST_APPLY, "Update", api_version, subresource)
        managers = record_update(zero_object(pos), base, {}, first, api_version=api_version, now=now, reset=reset,
                                 pos=pos)
    key = identity(manager, "Apply", "", subresource)
    config = deep_copy(applied)
    args = (base, config, managers, key, api_version, reset, pos)
    try:
        changed, managers = _apply_once(*args, force=force)
    except Conflicts as found:
        allowed = _allowed_by_last_applied(live, api_version, pos) if manager == "kubectl" else None
        remaining = [(k, p) for k, p in found.items if allowed is None or p not in allowed]
        if remaining:
            raise ApplyConflict.from_identities(remaining) from None
        changed, managers = _apply_once(*args, force=True)
    managers = strip(managers, key)
    result = base if changed is None else _drop_new_nulls(changed, base)
    if changed is not None and key in managers:
        managers[key] = replace(managers[key], time=now)
    if manager == "kubectl":
        _sync_last_applied(result, applied)
    entries = encode(managers)
    result_meta = result.setdefault("metadata", {})
    if entries:
        result_meta["managedFields"] = entries
    else:
        result_meta.pop("managedFields", None)
    return result


def _apply_once(base: dict[str, Any], config: dict[str, Any], managers: Managers, key: str, api_version: str,
                reset: FieldSet, pos: Pos, *, force: bool) -> tuple[Any, Managers]:
    try:
        return smd_apply(base, config, managers, key, api_version=api_version, force=force, reset=reset, pos=pos)
    except ItemError as err:
        raise InternalError(f"failed to create typed patch object ({_describe_object(config)}): {err}") from None


def _describe_object(obj: dict[str, Any]) -> str:
    """``namespace/name; group/version, Kind=Kind`` as kube names an object in these errors."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    return (f"{meta.get('namespace') or ''}/{meta.get('name') or ''}; {group}/{version}, "
            f"Kind={obj.get('kind') or ''}")


def _allowed_by_last_applied(live: dict[str, Any] | None, api_version: str, pos: Pos) -> FieldSet | None:
    """Fields the client-side-apply annotation sets to their live values (conflicts on them are forgiven)."""
    annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
    text = annotations.get(LAST_APPLIED) if isinstance(annotations, dict) else None
    if not text or live is None:
        return None
    try:
        last = json.loads(text)
    except ValueError:
        return None
    if not isinstance(last, dict) or last.get("apiVersion") != api_version:
        return None
    try:
        fields = to_set(last, pos, strict=True)
        diff = compare(last, live, pos)
    except ItemError:
        return None
    return fields - diff.modified - diff.added - diff.removed


def _sync_last_applied(result: dict[str, Any], applied: dict[str, Any]) -> None:
    """kubectl's applies keep an existing last-applied annotation equal to the configuration they apply."""
    annotations = (result.get("metadata") or {}).get("annotations")
    if not isinstance(annotations, dict) or not annotations.get(LAST_APPLIED):
        return
    doc = deep_copy(applied)
    doc_annotations = (doc.get("metadata") or {}).get("annotations") if isinstance(doc.get("metadata"), dict) \
        else None
    if isinstance(doc_annotations, dict):
        doc_annotations.pop(LAST_APPLIED, None)
    annotations[LAST_APPLIED] = go_json(doc, sort_keys=True) + "\n"
    size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())
    if size > _ANNOTATIONS_LIMIT:
        del annotations[LAST_APPLIED]


def _drop_new_nulls(value: Any, live: Any) -> Any:
    """``value`` without the null map entries ``live`` did not already have at the same place."""
    if type(value) is dict:
        before = live if type(live) is dict else {}
        return {k: _drop_new_nulls(v, before.get(k)) for k, v in value.items()
                if v is not None or (k in before and before[k] is None)}
    if type(value) is list:
        return [_drop_new_nulls(v, None) for v in value]
    return value
