"""Label selectors: parsing and its error texts, matching, LabelSelector dicts, formatting, validation."""

from __future__ import annotations

import pytest

from nanokube.api.errors import FieldError
from nanokube.api.labels import (
    DOES_NOT_EXIST,
    EQUALS,
    EXISTS,
    IN,
    NOT_IN,
    Requirement,
    Selector,
    format_label_selector,
    new_requirement,
    parse_selector,
    selector_from_label_selector,
    selector_from_set,
    validate_label_selector,
    validate_labels,
)

VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
KEY_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
BINARY_OPS = "in, notin, =, ==, !=, gt, lt"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("   ", ""),
        ("x=a,y=b,z=c", "x=a,y=b,z=c"),
        ("z=c,x=a", "x=a,z=c"),  # sorted by key
        ("x!=a,y=b", "x!=a,y=b"),
        ("x==a", "x==a"),
        ("x=", "x="),
        ("x= ", "x="),
        ("x=,z= ", "x=,z="),
        ("!x", "!x"),
        ("x", "x"),
        ("x>1", "x>1"),
        ("x>1,z<5", "x>1,z<5"),
        ("  app = web ,  tier  in ( b , a ) ", "app=web,tier in (a,b)"),
        ("x in (b,a,b)", "x in (a,b)"),
        ("x notin ()", "x notin ()"),
        ("x in (,a,,b,)", "x in (,a,b)"),
        ("in in (in)", "in in (in)"),
        ("notin notin (notin,in)", "notin notin (in,notin)"),
        ("example.com/app=x", "example.com/app=x"),
        ("kubernetes.io/cluster-service=true", "kubernetes.io/cluster-service=true"),
        ("a=b,!c,d", "a=b,!c,d"),
        ("x\t=\na", "x=a"),
    ],
)
def test_parse_good(text: str, canonical: str) -> None:
    assert str(parse_selector(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x==a==b", "found '==', expected: ',' or 'end of string'"),
        ("!x=a", "found '=', expected: ',' or 'end of string'"),
        ("a=b,", "found '', expected: identifier after ','"),
        ("a=b,)", "found ')', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("x y", f"unable to parse requirement: found 'y', expected: {BINARY_OPS}"),
        ("x (a)", f"unable to parse requirement: found '(', expected: {BINARY_OPS}"),
        ("!=a", "found '!=', expected: !, identifier, or 'end of string'"),
        ("!,a", "unable to parse requirement: found ',', expected: identifier"),
        ("x<-3", f'unable to parse requirement: values[0][x]: Invalid value: "-3": {VALUE_MSG}'),
        ("x in a", "unable to parse requirement: found 'a' expected: '('"),
        ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
        ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("x in (a,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
        ("x=(a)", "unable to parse requirement: found '(', expected: identifier"),
        ("x<a", "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"),
        ("x>99999999999999999999", "unable to parse requirement: values[0]: Invalid value: \"99999999999999999999\": for 'Gt', 'Lt' operators, the value must be an integer"),
        ("a=-b", f'unable to parse requirement: values[0][a]: Invalid value: "-b": {VALUE_MSG}'),
        ("-a=b", f'unable to parse requirement: <nil>: Invalid value: "-a": {KEY_NAME_MSG}'),
        ("x=a||y=b", f'unable to parse requirement: values[0][x]: Invalid value: "a||y": {VALUE_MSG}'),
        ("x in (a,-b)", f'unable to parse requirement: values[0][x]: Invalid value: "-b": {VALUE_MSG}'),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_selector(text)
    assert str(caught.value) == message


def test_parse_is_deterministic() -> None:
    assert str(parse_selector("x=a,a=x")) == str(parse_selector("a=x,x=a")) == "a=x,x=a"


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {"x": "y"}, True),
        ("", None, True),
        ("x=y", {"x": "y"}, True),
        ("x=z", {"x": "y"}, False),
        ("x=y", {}, False),
        ("x==y", {"x": "y"}, True),
        ("x!=y", {"x": "z"}, True),
        ("x!=y", {"x": "y"}, False),
        ("x!=y", {}, True),  # a missing key is "not equal"
        ("x=", {"x": ""}, True),
        ("x=", {}, False),
        ("x", {"x": ""}, True),
        ("x", {"y": "1"}, False),
        ("!x", {"y": "1"}, True),
        ("!x", {"x": "1"}, False),
        ("x in (a,b)", {"x": "b"}, True),
        ("x in (a,b)", {"x": "c"}, False),
        ("x in (a,b)", {}, False),
        ("x notin (a,b)", {"x": "c"}, True),
        ("x notin (a,b)", {"x": "a"}, False),
        ("x notin (a,b)", {}, True),
        ("x in ()", {"x": ""}, True),
        ("x>1", {"x": "2"}, True),
        ("x>1", {"x": "1"}, False),
        ("x>1", {"x": "abc"}, False),
        ("x>1", {"x": "2.5"}, False),
        ("x>1", {}, False),
        ("x<1", {"x": "-2"}, True),
        ("x<10", {"x": "+9"}, True),
        ("x<10", {"x": " 9"}, False),  # Go's ParseInt allows no spaces
        ("x<10", {"x": "1_0"}, False),  # nor underscores
        ("x=y,z=w", {"x": "y", "z": "w"}, True),
        ("x=y,z=w", {"x": "y", "z": "v"}, False),
        ("x=y,!z", {"x": "y"}, True),
    ],
)
def test_matches(text: str, labels: dict[str, str] | None, expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


def test_empty_and_nothing() -> None:
    assert Selector().empty
    assert parse_selector("").empty
    assert not parse_selector("a").empty
    nothing = Selector.nothing()
    assert not nothing.empty
    assert nothing.matches_nothing
    assert not nothing.matches({})
    assert not nothing.matches({"a": "b"})
    assert str(nothing) == ""
    assert nothing.add(Requirement("a", EXISTS)).matches_nothing


def test_add_and_requires_exact_match() -> None:
    selector = parse_selector("b=1").add(Requirement("a", IN, ("x",)))
    assert str(selector) == "a in (x),b=1"
    assert selector.requires_exact_match("a") == "x"
    assert selector.requires_exact_match("b") == "1"
    assert selector.requires_exact_match("c") is None
    assert parse_selector("a in (x,y)").requires_exact_match("a") is None
    assert parse_selector("a!=x").requires_exact_match("a") is None


def test_equality() -> None:
    assert parse_selector("a=b,c") == parse_selector("c,a=b")
    assert parse_selector("a=b") != parse_selector("a=c")
    assert Selector.nothing() != Selector()


def test_selector_from_set() -> None:
    selector = selector_from_set({"tier": "web", "app": "x"})
    assert str(selector) == "app=x,tier=web"
    assert selector.matches({"app": "x", "tier": "web", "other": "1"})
    assert not selector.matches({"app": "x"})
    assert selector_from_set(None).empty
    assert selector_from_set({}).matches({"a": "b"})


@pytest.mark.parametrize(
    ("label_selector", "text"),
    [
        ({"matchLabels": {"app": "x"}}, "app=x"),
        ({"matchLabels": {"app": "x", "a": "b"}}, "a=b,app=x"),
        (
            {"matchLabels": {"app": "x"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
            "app=x,tier in (a,b)",
        ),
        ({"matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["a"]}]}, "t notin (a)"),
        ({"matchExpressions": [{"key": "t", "operator": "Exists"}]}, "t"),
        ({"matchExpressions": [{"key": "t", "operator": "DoesNotExist", "values": []}]}, "!t"),
        ({}, ""),
        ({"matchLabels": {}, "matchExpressions": []}, ""),
    ],
)
def test_selector_from_label_selector_string(label_selector: dict, text: str) -> None:
    assert str(selector_from_label_selector(label_selector)) == text


def test_label_selector_none_matches_nothing_empty_matches_everything() -> None:
    assert not selector_from_label_selector(None).matches({"app": "x"})
    assert selector_from_label_selector({}).matches({"app": "x"})
    assert selector_from_label_selector({}).matches(None)


def test_label_selector_matching() -> None:
    selector = selector_from_label_selector(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "team", "operator": "Exists"},
            ],
        }
    )
    assert selector.matches({"app": "web", "tier": "front", "team": "a"})
    assert selector.matches({"app": "web", "tier": "back", "team": "a", "env": "dev"})
    assert not selector.matches({"app": "web", "tier": "front", "team": "a", "canary": "1"})
    assert not selector.matches({"app": "web", "tier": "front", "team": "a", "env": "prod"})
    assert not selector.matches({"app": "web", "tier": "side", "team": "a"})
    assert not selector.matches({"app": "web", "tier": "front"})
    assert not selector.matches({"app": "db", "tier": "front", "team": "a"})


@pytest.mark.parametrize(
    ("label_selector", "message"),
    [
        ({"matchExpressions": [{"key": "a", "operator": "Foo"}]}, '"Foo" is not a valid label selector operator'),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: ["x"]: values set must be empty for exists and does not exist',
        ),
        ({"matchLabels": {"-a": "b"}}, f'key: Invalid value: "-a": {KEY_NAME_MSG}'),
        ({"matchLabels": {"a": "-b"}}, f'values[0][a]: Invalid value: "-b": {VALUE_MSG}'),
    ],
)
def test_label_selector_errors(label_selector: dict, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        selector_from_label_selector(label_selector)
    assert str(caught.value) == message


def test_new_requirement_aggregates_errors() -> None:
    with pytest.raises(ValueError) as caught:
        new_requirement("-k", IN, [])
    assert str(caught.value) == (
        f'[key: Invalid value: "-k": {KEY_NAME_MSG}, '
        "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty]"
    )
    with pytest.raises(ValueError) as caught:
        new_requirement("k", "bogus", [])
    assert str(caught.value) == (
        'operator: Unsupported value: "bogus": supported values: "in", "notin", "=", "==", "!=", "gt", "lt", '
        '"exists", "!"'
    )
    with pytest.raises(ValueError) as caught:
        new_requirement("k", EQUALS, ["a", "b"])
    assert "exact-match compatibility requires one single value" in str(caught.value)
    assert new_requirement("k", DOES_NOT_EXIST).values == ()
    assert new_requirement("k", NOT_IN, ["b", "a"]).values == ("b", "a")


@pytest.mark.parametrize(
    ("label_selector", "text"),
    [
        (None, "<none>"),
        ({}, "<none>"),
        ({"matchLabels": {"app": "x"}}, "app=x"),
        ({"matchExpressions": [{"key": "a", "operator": "Bad"}]}, "<error>"),
    ],
)
def test_format_label_selector(label_selector: dict | None, text: str) -> None:
    assert format_label_selector(label_selector) == text


def _messages(errors: list[FieldError]) -> list[str]:
    return [e.message_with_field() for e in errors]


def test_validate_label_selector() -> None:
    assert validate_label_selector(None, "spec.selector") == []
    assert validate_label_selector({"matchLabels": {"app": "x"}}, "spec.selector") == []
    errors = validate_label_selector(
        {
            "matchLabels": {"-bad": "ok", "good": "-bad"},
            "matchExpressions": [
                {"key": "a", "operator": "In"},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "c", "operator": "Maybe"},
                {"key": "d", "operator": "NotIn", "values": ["ok", "no way"]},
            ],
        },
        "spec.selector",
    )
    assert _messages(errors) == [
        f'spec.selector.matchLabels: Invalid value: "-bad": {KEY_NAME_MSG}',
        f'spec.selector.matchLabels: Invalid value: "-bad": {VALUE_MSG}',
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        'spec.selector.matchExpressions[2].operator: Invalid value: "Maybe": not a valid selector operator',
        f'spec.selector.matchExpressions[3].values[1]: Invalid value: "no way": {VALUE_MSG}',
    ]
    assert [e.to_cause()["reason"] for e in errors[2:5]] == [
        "FieldValueRequired", "FieldValueForbidden", "FieldValueInvalid",
    ]


def test_validate_label_selector_allows_invalid_values_when_asked() -> None:
    selector = {"matchExpressions": [{"key": "d", "operator": "In", "values": ["no way"]}]}
    assert validate_label_selector(selector, "s", allow_invalid_label_value=True) == []
    assert len(validate_label_selector(selector, "s")) == 1


def test_validate_labels() -> None:
    assert validate_labels({"app": "x", "example.com/a": ""}, "metadata.labels") == []
    assert validate_labels(None, "metadata.labels") == []
    assert _messages(validate_labels({"a": "x" * 64}, "metadata.labels")) == [
        'metadata.labels: Invalid value: "' + "x" * 64 + '": must be no more than 63 bytes'
    ]


def test_scale_status_selector_string() -> None:
    # What the Scale subresource reports as status.selector for a Deployment.
    spec_selector = {"matchLabels": {"app": "x"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]}
    text = str(selector_from_label_selector(spec_selector))
    assert text == "app=x,tier in (a,b)"
    assert str(parse_selector(text)) == text
