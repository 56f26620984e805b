"""The shared required-node-affinity predicate: requirements, terms, nodeSelector and their combination."""

from __future__ import annotations

from typing import Any

import pytest

from nanokube.api.nodeaffinity import (
    NAME_FIELD,
    pod_fits_node,
    pod_matches_node,
    required_terms,
    requirement_matches,
    selector_matches,
    term_matches,
)

JSON = dict[str, Any]
LABELS = {"zone": "z1", "cores": "4", "disk": ""}


def _req(key: str, op: str, *values: str) -> JSON:
    return {"key": key, "operator": op, **({"values": list(values)} if values else {})}


def _required(*terms: JSON) -> JSON:
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}}


@pytest.mark.parametrize(("req", "expected"), [
    (_req("zone", "In", "z1", "z2"), True),
    (_req("zone", "In", "z2"), False),
    (_req("absent", "In", "z1"), False),
    (_req("zone", "NotIn", "z1"), False),
    (_req("zone", "NotIn", "z2"), True),
    (_req("absent", "NotIn", "z1"), True),
    (_req("disk", "Exists"), True),
    (_req("absent", "Exists"), False),
    (_req("disk", "DoesNotExist"), False),
    (_req("absent", "DoesNotExist"), True),
    (_req("cores", "Gt", "3"), True),
    (_req("cores", "Gt", "4"), False),
    (_req("cores", "Lt", "5"), True),
    (_req("cores", "Lt", "4"), False),
    (_req("cores", "Gt", "3", "2"), False),  # Gt/Lt take exactly one value
    (_req("zone", "Gt", "3"), False),  # a label that is no integer never compares
    (_req("cores", "Gt", "x"), False),
    (_req("absent", "Lt", "9"), False),
    (_req("zone", "Equals", "z1"), False),  # not a node selector operator
])
def test_requirement_operators(req: JSON, expected: bool) -> None:
    assert requirement_matches(req, LABELS) is expected


def test_a_term_ands_expressions_and_fields_and_an_empty_term_matches_nothing() -> None:
    zone = _req("zone", "In", "z1")
    mine = {"key": NAME_FIELD, "operator": "In", "values": ["n1"]}
    assert term_matches({"matchExpressions": [zone]}, "n1", LABELS)
    assert term_matches({"matchExpressions": [zone], "matchFields": [mine]}, "n1", LABELS)
    assert not term_matches({"matchExpressions": [zone], "matchFields": [mine]}, "n2", LABELS)
    assert not term_matches({"matchExpressions": [zone, _req("cores", "Gt", "8")]}, "n1", LABELS)
    assert term_matches({"matchFields": [{"key": NAME_FIELD, "operator": "NotIn", "values": ["n2"]}]}, "n1", {})
    assert not term_matches({}, "n1", LABELS)
    assert not term_matches({"matchExpressions": [], "matchFields": []}, "n1", LABELS)


def test_match_fields_know_only_the_node_name() -> None:
    other = {"key": "metadata.namespace", "operator": "NotIn", "values": ["x"]}
    assert not term_matches({"matchFields": [other]}, "n1", LABELS)
    # a label called metadata.name is not the field
    assert not term_matches({"matchFields": [_req(NAME_FIELD, "In", "n1")]}, "n2", {NAME_FIELD: "n1"})


def test_required_terms_tell_absent_from_empty() -> None:
    assert required_terms({}) is None
    assert required_terms({"affinity": {"nodeAffinity": {}}}) is None
    assert required_terms(_required()) == []
    term = {"matchExpressions": [_req("zone", "Exists")]}
    assert required_terms(_required(term, "junk")) == [term]  # type: ignore[arg-type]


def test_node_selector_needs_every_label_with_its_value() -> None:
    assert selector_matches({}, {})
    assert selector_matches({"zone": "z1", "disk": ""}, LABELS)
    assert not selector_matches({"zone": "z2"}, LABELS)
    assert not selector_matches({"gpu": ""}, LABELS)  # an empty value still needs the label


def test_pod_matches_node_ands_selector_with_ored_terms() -> None:
    no_match = {"matchExpressions": [_req("zone", "In", "z9")]}
    match = {"matchExpressions": [_req("cores", "Lt", "8")]}
    assert pod_matches_node({}, "n1", {})
    assert pod_matches_node(_required(no_match, match), "n1", LABELS)
    assert not pod_matches_node(_required(no_match), "n1", LABELS)
    assert not pod_matches_node(_required(), "n1", LABELS)  # required with no terms admits no node
    both = {**_required(match), "nodeSelector": {"zone": "z2"}}
    assert not pod_matches_node(both, "n1", LABELS)
    both["nodeSelector"] = {"zone": "z1"}
    assert pod_matches_node(both, "n1", LABELS)


def test_pod_fits_node_reads_a_node_object() -> None:
    pinned = _required({"matchFields": [{"key": NAME_FIELD, "operator": "In", "values": ["n1"]}]})
    node = {"metadata": {"name": "n1", "labels": {"zone": "z1"}}}
    assert pod_fits_node({**pinned, "nodeSelector": {"zone": "z1"}}, node)
    assert not pod_fits_node(pinned, {"metadata": {"name": "n2"}})
    assert not pod_fits_node({"nodeSelector": {"zone": "z1"}}, {"metadata": {"name": "n1"}})
