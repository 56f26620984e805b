"""Walks of JSON objects over ownership shapes: field sets, comparison, merge and removal.

These are structured-merge-diff's typed operations, written for plain JSON trees:

* ``to_set`` - the fields a value sets (an applied configuration's ownership). Leaves, list items and map entries
  of free-keyed maps are members; a struct field is a member only when it is null or an empty map;
* ``compare`` - added / modified / removed paths between two objects. A map or list that appears (or disappears)
  as a whole is itself added (removed) besides its leaves, which is where ``"."`` in an Update entry comes from;
  empty or null on both sides is compared as a leaf;
* ``merge`` - the applied configuration over the live object: maps key by key, keyed lists and sets item by item
  with the configuration's order winning for shared items, atomic values replaced;
* ``remove_items`` - the object without the members of a set (a member removes its whole subtree). A map or
  list left empty becomes null, as kube's does (the caller drops such nulls);
* ``ensure_named`` - a set plus the struct fields above its paths (kube's EnsureNamedFieldsAreMembers), so that
  pruning can take a whole struct away.

Values may be ``MISSING`` (absent) as well as ``None`` (JSON null): kube tells these apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nanokube.api.managedfields.fieldset import FieldSet, Path, TrieNode, element_string, field, path_string
from nanokube.api.managedfields.shape import (
    LEAF,
    MAPPING,
    MISSING,
    ItemError,
    Pos,
    child,
    element,
    item_element,
    kind_of,
)
from nanokube.api.objects import json_equal
from nanokube.api.schema import OBJECT


def _located(path: Path, message: str) -> str:
    return f"{path_string(path)}: {message}" if path else message


def _index(pos: Pos, items: list[Any], *, strict: bool, path: Path = ()) -> list[tuple[str, Any]]:
    """(path element, item) for each item; items without identity are skipped, or raise when ``strict``."""
    out: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        try:
            found = item_element(pos, item)
        except ItemError as err:
            if strict:
                raise ItemError(_located(path, f"element {i}: {err}")) from None
            continue
        if strict and found in seen:
            raise ItemError(_located(path, f"duplicate entries for key {element_string(found)}"))
        seen.add(found)
        out.append((found, item))
    return out


# -- field sets ----------------------------------------------------------------------------------------------------


def to_set(value: Any, pos: Pos, *, strict: bool = False) -> FieldSet:
    """The paths ``value`` sets. ``strict`` raises ItemError on list items kube would refuse in a request."""
    out: list[Path] = []
    _to_set(value, pos, (), out, strict)
    return FieldSet(out)


def _to_set(value: Any, pos: Pos, path: Path, out: list[Path], strict: bool) -> None:
    kind = kind_of(pos, value)
    if kind == LEAF:
        out.append(path)
    elif kind == MAPPING:
        if type(value) is not dict:
            return
        for key, sub in value.items():
            sub_pos, named = child(pos, key)
            sub_path = (*path, field(key))
            _to_set(sub, sub_pos, sub_path, out, strict)
            if sub is None or (type(sub) is dict and not sub) or not named:
                out.append(sub_path)
    elif type(value) is list:
        items = _index(pos, value, strict=strict, path=path)
        counts: dict[str, int] = {}
        for found, _ in items:
            counts[found] = counts.get(found, 0) + 1
        item_pos = element(pos)
        for found, item in items:
            item_path = (*path, found)
            if counts[found] == 1:
                _to_set(item, item_pos, item_path, out, strict)
            out.append(item_path)  # duplicated items are owned as a whole


# -- comparison ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    added: FieldSet
    modified: FieldSet
    removed: FieldSet

    def without(self, reset: FieldSet) -> Comparison:
        """The comparison minus everything at or under the reset paths."""
        if not reset:
            return self
        return Comparison(self.added.recursive_difference(reset), self.modified.recursive_difference(reset),
                          self.removed.recursive_difference(reset))

    @property
    def changed(self) -> FieldSet:
        return self.added | self.modified


def compare(old: Any, new: Any, pos: Pos) -> Comparison:
    acc: tuple[list[Path], list[Path], list[Path]] = ([], [], [])
    _compare(old, new, pos, (), acc)
    return Comparison(FieldSet(acc[0]), FieldSet(acc[1]), FieldSet(acc[2]))


def _kind(pos: Pos, old: Any, new: Any) -> str:
    if old is MISSING:
        return kind_of(pos, new)
    kind = kind_of(pos, old)
    return kind if new is MISSING or kind_of(pos, new) == kind else LEAF


def _leaf(old: Any, new: Any, path: Path, acc: tuple[list[Path], list[Path], list[Path]]) -> None:
    if old is MISSING:
        acc[0].append(path)
    elif new is MISSING:
        acc[2].append(path)
    elif not json_equal(old, new):
        acc[1].append(path)


def _compare(old: Any, new: Any, pos: Pos, path: Path, acc: tuple[list[Path], list[Path], list[Path]]) -> None:
    kind = _kind(pos, old, new)
    if kind == LEAF:
        _leaf(old, new, path, acc)
        return
    if kind == MAPPING:
        old_map = old if type(old) is dict else {}
        new_map = new if type(new) is dict else {}
        if not old_map and not new_map:
            _leaf(old, new, path, acc)  # empty on both sides: compared as a leaf
            return
        for key in dict.fromkeys([*old_map, *new_map]):
            _compare(old_map.get(key, MISSING), new_map.get(key, MISSING), child(pos, key)[0],
                     (*path, field(key)), acc)
    else:
        old_list = old if type(old) is list else []
        new_list = new if type(new) is list else []
        if not old_list and not new_list:
            _leaf(old, new, path, acc)
            return
        _compare_items(old_list, new_list, pos, path, acc)
    if old is MISSING:
        acc[0].append(path)
    elif new is MISSING:
        acc[2].append(path)


def _groups(pos: Pos, items: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for found, item in _index(pos, items, strict=False):
        out.setdefault(found, []).append(item)
    return out


def _compare_items(old: list[Any], new: list[Any], pos: Pos, path: Path,
                   acc: tuple[list[Path], list[Path], list[Path]]) -> None:
    before, after = _groups(pos, old), _groups(pos, new)
    item_pos = element(pos)
    for found in dict.fromkeys([*before, *after]):
        olds, news = before.get(found, []), after.get(found, [])
        item_path = (*path, found)
        if len(olds) <= 1 and len(news) <= 1:
            _compare(olds[0] if olds else MISSING, news[0] if news else MISSING, item_pos, item_path, acc)
        elif len(olds) >= 2 and len(news) >= 2:
            if not json_equal(olds, news):
                acc[1].append(item_path)
        elif len(olds) >= 2:
            if news:
                _compare(MISSING, news[0], item_pos, item_path, acc)
            acc[2].append(item_path)
        else:
            if olds:
                _compare(olds[0], MISSING, item_pos, item_path, acc)
            acc[0].append(item_path)


# -- merge ---------------------------------------------------------------------------------------------------------


def merge(live: Any, applied: Any, pos: Pos, path: Path = ()) -> Any:
    """The applied configuration merged over the live value (MISSING when both are). Raises ItemError when the
    configuration has list items without identity or duplicated keys."""
    if applied is MISSING:
        return live
    kind = kind_of(pos, applied)
    if kind == LEAF:
        return applied
    if kind == MAPPING:
        old = live if type(live) is dict else {}
        new = applied if type(applied) is dict else {}
        if not old and not new:
            return applied
        out: dict[str, Any] = {}
        for key in dict.fromkeys([*old, *new]):
            merged = merge(old.get(key, MISSING), new.get(key, MISSING), child(pos, key)[0], (*path, field(key)))
            if merged is not MISSING:
                out[key] = merged
        return out
    old_list = live if type(live) is list else []
    new_list = applied if type(applied) is list else []
    if not old_list and not new_list:
        return applied
    return _merge_items(old_list, new_list, pos, path)


def _merge_items(live: list[Any], applied: list[Any], pos: Pos, path: Path) -> list[Any]:
    """Items merged by identity: live-only items keep their places, shared and new ones follow the config's order."""
    new_index = _index(pos, applied, strict=True, path=path)
    new_keys = [k for k, _ in new_index]
    new_items = dict(new_index)
    old_index = _index(pos, live, strict=False)
    old_keys = [k for k, _ in old_index]
    old_items: dict[str, Any] = {}
    for found, item in old_index:
        old_items[found] = MISSING if found in old_items else item  # duplicates are not merged into
    shared = [k for k in new_keys if k in old_items]
    item_pos = element(pos)
    out: list[Any] = []

    def take(value: Any) -> None:
        if value is not MISSING:
            out.append(value)

    merged_new: set[str] = set()
    li = ri = 0
    while li < len(old_keys) or ri < len(new_keys):
        if li < len(old_keys) and ri < len(new_keys):
            found = old_keys[li]
            if found == new_keys[ri]:
                merged_new.add(found)
                take(merge(old_items[found], new_items[found], item_pos, (*path, found)))
                li, ri = li + 1, ri + 1
                shared = shared[1:] if shared and shared[0] == found else shared
                continue
            if found in new_items and shared and shared[0] != found:
                li += 1  # shared, but another shared item comes first in the config
                continue
        if li < len(old_keys):
            found = old_keys[li]
            if found not in new_items:
                take(old_index[li][1])
                li += 1
                continue
            if found in merged_new:
                li += 1
        if ri < len(new_keys):
            found = new_keys[ri]
            merged_new.add(found)
            take(merge(old_items.get(found, MISSING), new_items[found], item_pos, (*path, found)))
            ri += 1
            if shared and shared[0] == found:
                shared = shared[1:]
    return out


# -- removal -------------------------------------------------------------------------------------------------------


def remove_items(value: Any, remove: FieldSet, pos: Pos) -> Any:
    """``value`` without the members of ``remove`` (and their subtrees)."""
    if not remove:
        return value
    return _remove(value, remove, pos, ())


def _remove(value: Any, remove: FieldSet, pos: Pos, path: Path) -> Any:
    kind = kind_of(pos, value)
    if kind == LEAF:
        return None if type(value) in (dict, list) else value
    if kind == MAPPING:
        if type(value) is not dict or not value:
            return None
        out: dict[str, Any] = {}
        for key, sub in value.items():
            sub_path = (*path, field(key))
            if sub_path in remove:
                continue
            out[key] = _remove(sub, remove, child(pos, key)[0], sub_path) if remove.has_under(sub_path) else sub
        return out or None
    if type(value) is not list or not value:
        return None
    items: list[Any] = []
    item_pos = element(pos)
    for item in value:
        try:
            found = item_element(pos, item)
        except ItemError:
            items.append(item)
            continue
        item_path = (*path, found)
        if item_path in remove:
            continue
        items.append(_remove(item, remove, item_pos, item_path) if remove.has_under(item_path) else item)
    return items or None


def ensure_named(fields: FieldSet, pos: Pos) -> FieldSet:
    """``fields`` plus every struct field that has owned paths below it."""
    extra: list[Path] = []
    _named_parents(fields.trie(), pos, (), extra)
    return fields | FieldSet(extra) if extra else fields


def _named_parents(node: TrieNode, pos: Pos, path: Path, out: list[Path]) -> None:
    for here, sub in node.children.items():
        if not sub.children:
            continue
        sub_path = (*path, here)
        if here.startswith("f:"):
            if pos.node.kind == OBJECT and here[2:] in pos.node.fields:
                out.append(sub_path)
            _named_parents(sub, child(pos, here[2:])[0], sub_path, out)
        elif here.startswith("k:"):
            _named_parents(sub, element(pos), sub_path, out)
