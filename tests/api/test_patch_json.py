"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902) with evanphx/json-patch v4 behaviour and messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nanokube.api.patch import PatchApplyError, PatchDecodeError, json_merge_patch, json_patch


def deployment() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "x",
            "resourceVersion": "12",
            "labels": {"app": "x"},
            "annotations": {"example.com/a~b": "1", "example.com/c": "2"},
        },
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}},
    }


# -- merge patch -----------------------------------------------------------------------------------------------------
def test_merge_patch_merges_maps_and_null_deletes() -> None:
    live = deployment()
    result = json_merge_patch(live, {"metadata": {"labels": {"foo": "bar", "app": None}}, "spec": {"replicas": 4}})
    assert result["metadata"]["labels"] == {"foo": "bar"}
    assert result["spec"]["replicas"] == 4
    assert result["spec"]["template"] == live["spec"]["template"]


def test_merge_patch_replaces_lists_wholesale() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "busybox"}]}}}}
    result = json_merge_patch(deployment(), patch)
    assert result["spec"]["template"]["spec"]["containers"] == [{"name": "b", "image": "busybox"}]


def test_merge_patch_prunes_nulls_from_new_values_and_objects_in_lists() -> None:
    patch = {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}, "list": [{"a": None, "b": 1}, None]}}
    result = json_merge_patch(deployment(), patch)
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    assert result["spec"]["list"] == [{"b": 1}, None]


def test_merge_patch_value_replaces_a_scalar_with_a_map() -> None:
    assert json_merge_patch({"a": 1}, {"a": {"b": None, "c": 2}}) == {"a": {"c": 2}}


def test_merge_patch_rfc_examples() -> None:
    assert json_merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert json_merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert json_merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert json_merge_patch({"a": "foo"}, "bar") == "bar"
    assert json_merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert json_merge_patch([1, 2], {"a": "b", "c": None}) == {"a": "b"}


def test_merge_patch_leaves_inputs_alone() -> None:
    live, patch = deployment(), {"metadata": {"labels": {"app": None}}}
    before = copy.deepcopy(live)
    result = json_merge_patch(live, patch)
    result["spec"]["replicas"] = 9
    assert live == before
    assert patch == {"metadata": {"labels": {"app": None}}}


# -- JSON patch ------------------------------------------------------------------------------------------------------
def test_replace_like_kubectl_patch_type_json() -> None:
    result = json_patch(deployment(), [{"op": "replace", "path": "/spec/replicas", "value": 2}])
    assert result["spec"]["replicas"] == 2


def test_add_remove_copy_move() -> None:
    ops = [
        {"op": "add", "path": "/metadata/labels/tier", "value": "web"},
        {"op": "remove", "path": "/metadata/labels/app"},
        {"op": "copy", "from": "/metadata/labels", "path": "/spec/template/metadata"},
        {"op": "move", "from": "/metadata/annotations/example.com~1c", "path": "/metadata/annotations/moved"},
    ]
    result = json_patch(deployment(), ops)
    assert result["metadata"]["labels"] == {"tier": "web"}
    assert result["spec"]["template"]["metadata"] == {"tier": "web"}
    assert result["metadata"]["annotations"] == {"example.com/a~b": "1", "moved": "2"}


def test_escaped_pointer_tokens() -> None:
    ops = [
        {"op": "test", "path": "/metadata/annotations/example.com~1a~0b", "value": "1"},
        {"op": "replace", "path": "/metadata/annotations/example.com~1a~0b", "value": "one"},
    ]
    result = json_patch(deployment(), ops)
    assert result["metadata"]["annotations"]["example.com/a~b"] == "one"


def test_array_indices_and_dash() -> None:
    doc = {"l": ["a", "c"]}
    ops = [
        {"op": "add", "path": "/l/1", "value": "b"},
        {"op": "add", "path": "/l/-", "value": "d"},
        {"op": "add", "path": "/l/0", "value": "_"},
        {"op": "remove", "path": "/l/-1"},
    ]
    assert json_patch(doc, ops) == {"l": ["_", "a", "b", "c"]}
    assert doc == {"l": ["a", "c"]}


def test_add_appending_a_container_through_the_dash_index() -> None:
    ops = [{"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "side", "image": "b"}}]
    result = json_patch(deployment(), ops)
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == ["app", "side"]


def test_failed_test_op_is_unprocessable() -> None:
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "11"},
        {"op": "replace", "path": "/metadata/managedFields", "value": []},
    ]
    with pytest.raises(PatchApplyError, match="testing value /metadata/resourceVersion failed: test failed") as info:
        json_patch(deployment(), ops)
    assert info.value.code == 422


def test_passing_test_op_then_replace_of_a_missing_key_adds_it_like_v4() -> None:
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "12"},
        {"op": "replace", "path": "/metadata/managedFields", "value": []},
    ]
    assert json_patch(deployment(), ops)["metadata"]["managedFields"] == []


def test_test_of_a_missing_key_matches_null() -> None:
    json_patch({"a": {}}, [{"op": "test", "path": "/a/b", "value": None}])
    with pytest.raises(PatchApplyError):
        json_patch({"a": {}}, [{"op": "test", "path": "/a/b", "value": 1}])


def test_test_compares_json_types() -> None:
    with pytest.raises(PatchApplyError):
        json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": True}])
    json_patch({"a": {"x": [1, {"y": "z"}]}}, [{"op": "test", "path": "/a", "value": {"x": [1, {"y": "z"}]}}])


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        (
            [{"op": "add", "path": "/missing/x", "value": 1}],
            'add operation does not apply: doc is missing path: "/missing/x": missing value',
        ),
        (
            [{"op": "remove", "path": "/metadata/nothere"}],
            "error in remove for path: '/metadata/nothere': Unable to remove nonexistent key: nothere: missing value",
        ),
        (
            [{"op": "replace", "path": "/spec/template/spec/containers/3", "value": {}}],
            "replace operation does not apply: doc is missing key: /spec/template/spec/containers/3: missing value",
        ),
        (
            [{"op": "add", "path": "/spec/template/spec/containers/5", "value": {}}],
            "error in add for path: '/spec/template/spec/containers/5': "
            "Unable to access invalid index: 5: invalid index referenced",
        ),
        (
            [{"op": "add", "path": "/spec/template/spec/containers/x", "value": {}}],
            "value was not a proper array index: 'x'",
        ),
        ([{"op": "frobnicate", "path": "/a"}], "Unexpected kind: frobnicate"),
        ([{"path": "/a"}], "Unexpected kind: unknown"),
        ([{"op": "remove"}], "remove operation failed to decode path: operation missing path field: missing value"),
        (
            [{"op": "move", "from": "/metadata/nothere", "path": "/x"}],
            "error in move for path: 'nothere': Unable to remove nonexistent key",
        ),
    ],
)
def test_ops_that_do_not_apply(ops: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(PatchApplyError) as info:
        json_patch(deployment(), ops)
    assert message in str(info.value)


@pytest.mark.parametrize("body", [{"op": "add"}, "text", [1], [["op"]]])
def test_malformed_documents_are_bad_requests(body: Any) -> None:
    with pytest.raises(PatchDecodeError) as info:
        json_patch(deployment(), body)
    assert info.value.code == 400
    assert "cannot unmarshal" in str(info.value)


def test_a_failing_op_leaves_the_target_untouched() -> None:
    live = deployment()
    before = copy.deepcopy(live)
    with pytest.raises(PatchApplyError):
        json_patch(live, [{"op": "remove", "path": "/metadata/labels/app"}, {"op": "remove", "path": "/nope"}])
    assert live == before


def test_replace_the_whole_document() -> None:
    assert json_patch({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}]) == {"b": 2}
    with pytest.raises(PatchApplyError, match="must be object or array"):
        json_patch({"a": 1}, [{"op": "replace", "path": "", "value": 3}])


def test_added_values_are_not_shared_between_ops() -> None:
    shared = {"k": "v"}
    result = json_patch({}, [{"op": "add", "path": "/a", "value": shared}, {"op": "add", "path": "/b", "value": shared}])
    result["a"]["k"] = "changed"
    assert result["b"] == {"k": "v"}
    assert shared == {"k": "v"}
