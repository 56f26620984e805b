"""Strategic merge patch corner cases, checked against what apimachinery's own ``strategicpatch`` tests expect.

The cases are written for a small schema of our own (``widget``) shaped like the ``mergeItem`` type those
tests use: a merging list of maps, a plain list, a merging int list, a pointer field reached through
``allOf``, a replace-strategy object and retainKeys fields. Each expectation is worked out from the Go
algorithm (see the comments), not from our output.
"""

from __future__ import annotations

from typing import Any

import pytest

from nanokube.api.patch import PatchDecodeError, strategic_merge_patch
from nanokube.api.schema import SchemaIndex, patch_meta

REF = "#/components/schemas/"

DEFS: dict[str, dict[str, Any]] = {
    "widget": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "value": {"type": "string"},
            "other": {"type": "string"},
            "items": {
                "type": "array",
                "items": {"allOf": [{"$ref": REF + "widget"}]},
                "x-kubernetes-patch-merge-key": "name",
                "x-kubernetes-patch-strategy": "merge",
            },
            "plain": {"type": "array", "items": {"$ref": REF + "widget"}},
            "numbers": {"type": "array", "items": {"type": "integer"}, "x-kubernetes-patch-strategy": "merge"},
            "plainNumbers": {"type": "array", "items": {"type": "integer"}},
            "child": {
                "allOf": [{"$ref": REF + "widget"}],
                "x-kubernetes-patch-merge-key": "name",
                "x-kubernetes-patch-strategy": "merge",
            },
            "opaque": {"allOf": [{"$ref": REF + "raw"}], "x-kubernetes-patch-strategy": "replace"},
            "kept": {"allOf": [{"$ref": REF + "widget"}], "x-kubernetes-patch-strategy": "retainKeys"},
            "keptItems": {
                "type": "array",
                "items": {"$ref": REF + "widget"},
                "x-kubernetes-patch-merge-key": "name",
                "x-kubernetes-patch-strategy": "merge,retainKeys",
            },
        },
    },
    "raw": {"type": "object"},
}

INDEX = SchemaIndex(DEFS)


def smp(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return strategic_merge_patch(original, patch, "widget", index=INDEX)


def test_schema_meta_through_all_of_and_component_refs() -> None:
    meta = patch_meta("widget", ("child", "items"), index=INDEX)
    assert (meta.strategy, meta.merge_key) == ("merge", "name")
    assert patch_meta("widget", ("keptItems",), index=INDEX).retains_keys
    assert patch_meta("widget", ("opaque",), index=INDEX).replaces


def test_delete_and_add_with_element_order_follow_gos_in_place_slices() -> None:
    # Go deletes "a" by shifting the live slice left ([b d d]) and appends "c" into the freed slot ([b d c]);
    # $setElementOrder then interleaves the live-only "d" by that view: b (ordered), d (before c), c.
    live = {"items": [{"name": "a"}, {"name": "b", "other": "x"}, {"name": "d", "other": "y"}]}
    patch = {
        "$setElementOrder/items": [{"name": "b"}, {"name": "c"}],
        "items": [{"name": "c"}, {"name": "a", "$patch": "delete"}],
    }
    assert smp(live, patch) == {"items": [{"name": "b", "other": "x"}, {"name": "d", "other": "y"}, {"name": "c"}]}


def test_delete_directive_removes_every_duplicate() -> None:
    live = {"items": [{"name": "a"}, {"name": "a"}, {"name": "b", "value": "v"}, {"name": "c"}, {"name": "c"}]}
    patch = {"items": [{"name": "a", "$patch": "delete"}, {"name": "c", "$patch": "delete"}]}
    assert smp(live, patch) == {"items": [{"name": "b", "value": "v"}]}


def test_patch_order_wins_and_live_only_items_keep_their_place() -> None:
    # b is live-only and came before c in the live list, so it goes first; c then a follow the patch order.
    live = {"items": [{"name": "a"}, {"name": "b", "value": "2"}, {"name": "c"}]}
    patch = {"items": [{"name": "c", "value": "3"}, {"name": "a", "value": "1"}]}
    assert smp(live, patch) == {
        "items": [{"name": "b", "value": "2"}, {"name": "c", "value": "3"}, {"name": "a", "value": "1"}]
    }


def test_element_order_may_name_items_that_do_not_exist() -> None:
    live = {"items": [{"name": "a"}, {"name": "c"}]}
    patch = {
        "$setElementOrder/items": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
        "items": [{"name": "c", "value": "3"}, {"name": "a", "value": "1"}],
    }
    assert smp(live, patch) == {"items": [{"name": "c", "value": "3"}, {"name": "a", "value": "1"}]}


def test_int_list_with_element_order_and_a_new_value() -> None:
    # The new 30 goes first (ordered), 10 next, the live-only 40 stays ahead of 20 as it was live.
    live = {"numbers": [10, 40, 20]}
    patch = {"$setElementOrder/numbers": [30, 10, 20], "numbers": [30]}
    assert smp(live, patch) == {"numbers": [30, 10, 40, 20]}


def test_int_list_merges_as_a_set() -> None:
    assert smp({"numbers": [1, 2]}, {"numbers": [2, 3]}) == {"numbers": [1, 2, 3]}


def test_delete_from_primitive_list_works_on_non_merging_lists_too() -> None:
    assert smp({"plainNumbers": [1, 2, 3]}, {"$deleteFromPrimitiveList/plainNumbers": [2]}) == {
        "plainNumbers": [1, 3]
    }


def test_plain_list_is_replaced() -> None:
    live = {"plain": [{"name": "a", "value": "1"}]}
    assert smp(live, {"plain": [{"name": "a"}]}) == {"plain": [{"name": "a"}]}


def test_replace_strategy_object_is_replaced() -> None:
    assert smp({"opaque": {"a": 1, "b": 2}}, {"opaque": {"c": 3}}) == {"opaque": {"c": 3}}


def test_retain_keys_inside_merging_list_items() -> None:
    live = {"keptItems": [{"name": "a", "value": "1", "other": "2"}, {"name": "b", "other": "x"}]}
    patch = {"keptItems": [{"name": "a", "$retainKeys": ["name", "value"], "value": "5"}]}
    assert smp(live, patch) == {"keptItems": [{"name": "a", "value": "5"}, {"name": "b", "other": "x"}]}


def test_retain_keys_map_without_directive_merges() -> None:
    assert smp({"kept": {"name": "a", "value": "1"}}, {"kept": {"value": None, "other": "o"}}) == {
        "kept": {"name": "a", "other": "o"}
    }


def test_pointer_field_merges_nested_lists_by_key() -> None:
    live = {"child": {"name": "p", "items": [{"name": "x", "value": "1"}, {"name": "y"}]}}
    patch = {"child": {"items": [{"name": "x", "value": "9"}]}}
    assert smp(live, patch) == {"child": {"name": "p", "items": [{"name": "x", "value": "9"}, {"name": "y"}]}}


def test_replace_directive_at_the_top_replaces_everything() -> None:
    assert smp({"name": "a", "value": "1"}, {"$patch": "replace", "name": "n"}) == {"name": "n"}


def test_directive_map_for_an_absent_key_is_dropped_like_go() -> None:
    # Go's removeDirectives drops a map carrying $patch when the key is new to the object.
    assert smp({"name": "a"}, {"child": {"$patch": "replace", "name": "z"}}) == {"name": "a"}


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"$setElementOrder": []}, "invalid patch format of setElementOrder list"),
        ({"$deleteFromPrimitiveList": [1]}, "invalid patch format of primitive list"),
        ({"$retainKeys": "name"}, "invalid patch format of retainKeys"),
    ],
)
def test_malformed_directives_are_bad_requests(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(PatchDecodeError, match=message):
        smp({"numbers": [1]}, patch)
