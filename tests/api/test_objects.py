"""Helpers over JSON-shaped objects."""

from __future__ import annotations

from typing import Any

import pytest

from nanokube.api.objects import deep_copy, get_path, json_equal, scalar_key, set_path


def pod() -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "annotations": {"a.example.com/x": "1"}},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}], "replicas": 0},
    }


def test_deep_copy_is_independent() -> None:
    original = pod()
    copied = deep_copy(original)
    assert copied == original
    copied["spec"]["containers"][0]["ports"].append({"containerPort": 81})
    copied["metadata"]["annotations"]["new"] = "v"
    assert original == pod()


def test_deep_copy_of_values_orjson_cannot_encode() -> None:
    big = {"n": 2**70, "t": ("a", {"b": 1})}
    copied = deep_copy(big)
    assert copied == {"n": 2**70, "t": ["a", {"b": 1}]}
    copied["t"][1]["b"] = 2
    assert big["t"][1] == {"b": 1}


def test_deep_copy_of_scalars() -> None:
    assert deep_copy(3) == 3
    assert deep_copy(None) is None


def test_get_path() -> None:
    obj = pod()
    assert get_path(obj, "metadata.name") == "p"
    assert get_path(obj, "spec.replicas", 5) == 0
    assert get_path(obj, "spec.missing.deeper", "d") == "d"
    assert get_path(obj, ("spec", "containers", 0, "ports", -1, "containerPort")) == 80
    assert get_path(obj, ("spec", "containers", 3)) is None
    assert get_path(obj, ("metadata", "annotations", "a.example.com/x")) == "1"
    assert get_path(obj, "metadata.name.first") is None


def test_set_path() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "p"}, "spec": "scalar"}
    set_path(obj, "metadata.labels.app", "x")
    set_path(obj, ("spec", "replicas"), 2)
    assert obj == {"metadata": {"name": "p", "labels": {"app": "x"}}, "spec": {"replicas": 2}}
    with pytest.raises(ValueError):
        set_path(obj, "", 1)


def test_json_equal_keeps_booleans_apart_from_numbers() -> None:
    assert not json_equal(True, 1)
    assert not json_equal({"a": [0]}, {"a": [False]})
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal([1], {"0": 1})
    assert not json_equal("1", 1)
    assert scalar_key(True) != scalar_key(1)
