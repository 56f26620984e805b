"""Ownership bookkeeping of one write, as structured-merge-diff's ``merge.Updater`` does it.

Managers are keyed by their *identity* (the JSON of manager, operation, Update's apiVersion and subresource; see
``manager.identity``), so one client can hold an Apply entry and Update entries side by side.

* ``smd_update`` - after any write: fields another manager owns that the write changed or added move away from
  it (or, when not forced, are conflicts); fields the write removed leave every manager.
* ``smd_apply`` - an apply: merge the configuration, make its field set the applier's, prune what the applier
  applied last time and no longer applies (unless someone else owns it), then ``smd_update`` with ``force`` as
  asked. Returns None as the object when nothing changed, so the caller keeps the entry's old time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from nanokube.api.managedfields.fieldset import FieldSet, Path
from nanokube.api.managedfields.shape import Pos
from nanokube.api.managedfields.typed import Comparison, compare, ensure_named, merge, remove_items, to_set
from nanokube.api.objects import json_equal


@dataclass(frozen=True)
class Entry:
    """One managedFields entry: the fields, the apiVersion they were written in, Apply or not, and when."""

    fields: FieldSet
    api_version: str
    applied: bool
    time: str | None = None


Managers = dict[str, Entry]


class Conflicts(Exception):
    """Fields other managers own that an apply would change: (manager identity, path), in kube's order."""

    def __init__(self, items: list[tuple[str, Path]]) -> None:
        super().__init__(f"{len(items)} conflicts")
        self.items = items


def smd_update(old: Any, new: Any, managers: Managers, workflow: str, *, force: bool, reset: FieldSet,
               pos: Pos) -> tuple[Managers, Comparison]:
    """Managers after ``old`` became ``new`` through ``workflow``'s write (which itself is left as it is)."""
    diff = compare(old, new, pos).without(reset)
    changed = diff.changed
    taken: dict[str, FieldSet] = {}
    for ident, entry in managers.items():
        if ident != workflow:
            overlap = entry.fields & changed
            if overlap:
                taken[ident] = overlap
    if taken and not force:
        raise Conflicts([(ident, path) for ident in sorted(taken) for path in taken[ident]])
    out: Managers = {}
    for ident, entry in managers.items():
        fields = entry.fields
        if ident != workflow:
            fields = fields - taken.get(ident, FieldSet()) - diff.removed
        if fields:
            out[ident] = entry if fields is entry.fields else replace(entry, fields=fields)
    return out, diff


def smd_apply(live: Any, config: Any, managers: Managers, ident: str, *, api_version: str, force: bool,
              reset: FieldSet, pos: Pos) -> tuple[Any, Managers]:
    """(the new object, or None when unchanged; the managers). Raises Conflicts, or ItemError for a bad config."""
    merged = merge(live, config, pos)
    last = managers.get(ident)
    managers = dict(managers)
    managers[ident] = Entry(to_set(config, pos, strict=True).recursive_difference(reset), api_version, True,
                            last.time if last else None)
    if last is not None and last.fields:
        merged = _prune(merged, managers, last.fields, pos)
    managers, _ = smd_update(live, merged, managers, ident, force=force, reset=reset, pos=pos)
    return (None if json_equal(live, merged) else merged), managers


def _prune(merged: Any, managers: Managers, last: FieldSet, pos: Pos) -> Any:
    """Removes what the applier applied last time unless it applies it again or another manager owns it."""
    last_all = ensure_named(last, pos)
    pruned = remove_items(merged, last_all, pos)
    owned = FieldSet()
    for entry in managers.values():
        owned = owned | entry.fields
    merged_set = ensure_named(to_set(merged, pos), pos)
    pruned_set = ensure_named(to_set(pruned, pos), pos)
    pruned = remove_items(merged, merged_set - (pruned_set | ensure_named(owned, pos)), pos)
    pruned_set = ensure_named(to_set(pruned, pos), pos)
    return remove_items(merged, (merged_set - pruned_set) & last_all, pos)
