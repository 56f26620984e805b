"""The shared ControllerRevision helpers: Go's hashes, naming, the template patch, ordering and truncation."""

from __future__ import annotations

from typing import Any

from nanokube.controllers import history

JSON = dict[str, Any]
ALPHABET = set("bcdfghjklmnpqrstvwxz2456789")


def _rev(name: str, number: int, **labels: str) -> JSON:
    return {"metadata": {"name": name, "creationTimestamp": "2024-01-01T00:00:00Z", "labels": labels},
            "revision": number}


def _names(revisions: list[JSON]) -> list[str]:
    return [r["metadata"]["name"] for r in revisions]


def test_fnv_and_safe_encoding_follow_go() -> None:
    assert history.fnv32(b"") == 0x811C9DC5
    assert history.fnv32(b"a") == 0x050C5D7E  # FNV-1
    assert history.fnv32a(b"") == 0x811C9DC5
    assert history.fnv32a(b"a") == 0xE40C292C  # FNV-1a
    assert history.fnv32a(b"b", history.fnv32a(b"a")) == history.fnv32a(b"ab")  # a sum can be continued
    assert history.safe_encode("0123456789") == "456789bcdf"


def test_revision_hash_is_stable_across_key_order_and_moves_with_collisions() -> None:
    a = {"spec": {"template": {"x": 1, "y": [1, 2]}}}
    b = {"spec": {"template": {"y": [1, 2], "x": 1}}}
    assert history.hash_revision(a, 0) == history.hash_revision(b, 0)
    assert history.hash_revision(a, 0) != history.hash_revision(a, 1)
    assert history.hash_revision(a) != history.hash_revision(a, 0)
    assert set(history.hash_revision(a, 0)) <= ALPHABET


def test_template_hash_is_controller_compute_hash() -> None:
    t1 = {"spec": {"containers": [{"name": "c", "image": "1"}]}, "metadata": {"labels": {"a": "b"}}}
    t2 = {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"image": "1", "name": "c"}]}}
    assert history.compute_hash(t1, None) == history.compute_hash(t2, None)
    assert len({history.compute_hash(t1, None), history.compute_hash(t1, 0), history.compute_hash(t1, 1)}) == 3
    raw = history.fnv32a(b'{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"image":"1","name":"c"}]}}')
    assert history.compute_hash(t1, None) == history.safe_encode(str(raw))
    assert history.compute_hash(t1, 1) == history.safe_encode(str(history.fnv32a(b"\x01\x00\x00\x00", raw)))
    # the two kube hashes differ: a StatefulSet's revision hash is not a DaemonSet's template hash
    assert history.compute_hash(t1, None) != history.hash_revision(t1)


def test_names_are_cut_to_fit() -> None:
    assert history.revision_name("web", "abc") == "web-abc"
    assert len(history.revision_name("x" * 300, "h" * 10)) <= 253


def test_template_patch_round_trips_and_copies() -> None:
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}
    patch = history.template_patch(template)
    assert patch == {"spec": {"template": {**template, "$patch": "replace"}}}
    assert "$patch" not in template
    restored = history.restored_template({"data": patch})
    assert restored == template
    restored["spec"]["containers"].append({"name": "c"})
    assert patch["spec"]["template"]["spec"]["containers"] == []
    assert history.restored_template({}) == {}


def test_new_revision_is_owned_labelled_and_annotated_as_the_parent() -> None:
    parent = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "annotations": {"note": "x"}}}
    data = {"spec": {"template": {}}}
    revision = history.new_revision(parent, ("apps/v1", "DaemonSet"), "p-h", {"app": "a"}, data, 4)
    assert revision["metadata"]["name"] == "p-h" and revision["metadata"]["namespace"] == "ns"
    assert revision["metadata"]["labels"] == {"app": "a"}
    assert revision["metadata"]["annotations"] == {"note": "x"}
    assert revision["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "p",
                                                        "uid": "u1", "controller": True,
                                                        "blockOwnerDeletion": True}]
    assert revision["revision"] == 4 and revision["data"] == data and revision["data"] is not data
    bare = history.new_revision({"metadata": {"name": "q", "uid": "u2"}}, ("apps/v1", "X"), "q-h", {}, {}, 1)
    assert "annotations" not in bare["metadata"] and bare["metadata"]["namespace"] == ""


def test_order_equality_and_next_number() -> None:
    ordered = history.sort_revisions([_rev("c", 3), _rev("a", 1), _rev("b", 2), _rev("d", 4)])
    assert _names(ordered) == ["a", "b", "c", "d"]
    assert history.next_revision(ordered) == 5 and history.next_revision([]) == 1
    assert _names(history.sort_revisions([_rev("y", 1), _rev("x", 1)])) == ["x", "y"]  # ties by name
    one, two = {"data": {"a": 1}}, {"data": {"a": 1}}
    assert history.equal_revision(one, two) and history.equal_revision(None, None)
    assert not history.equal_revision(one, None) and not history.equal_revision(one, {"data": {"a": 2}})
    assert history.find_equal_revisions([{"data": {"a": 2}}, two], one) == [two]


def test_truncation_skips_revisions_in_use() -> None:
    ordered = [_rev("a", 1), _rev("b", 2), _rev("c", 3), _rev("d", 4)]
    assert _names(history.surplus(ordered, {"d", "a"}, 1)) == ["b"]
    assert history.surplus(ordered, {"d"}, 3) == []
    assert history.surplus(ordered, set(), -1) == []
    assert _names(history.surplus(ordered, set(), 0)) == ["a", "b", "c", "d"]
    in_use = {"b"}
    assert _names(history.oldest_unused(ordered, lambda r: r["metadata"]["name"] in in_use, 2)) == ["a", "c"]
    assert history.oldest_unused(ordered, lambda r: False, 0) == []
    assert history.oldest_unused(ordered, lambda r: False, -3) == []
