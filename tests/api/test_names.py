"""Name syntax checks: the exact strings apimachinery returns, case by case."""

from __future__ import annotations

import random

import pytest

from nanokube.api import names

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
KEY_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("example.com", []),
        ("a", []),
        ("0-9.a-b", []),
        ("a" * 253, []),
        ("Example.com", [SUBDOMAIN_MSG]),
        ("-a", [SUBDOMAIN_MSG]),
        ("a-", [SUBDOMAIN_MSG]),
        ("a..b", [SUBDOMAIN_MSG]),
        ("a_b", [SUBDOMAIN_MSG]),
        ("", [SUBDOMAIN_MSG]),
        ("abc\n", [SUBDOMAIN_MSG]),
        ("a" * 254, ["must be no more than 253 characters"]),
        ("A" * 254, ["must be no more than 253 characters", SUBDOMAIN_MSG]),
    ],
)
def test_dns1123_subdomain(value: str, errors: list[str]) -> None:
    assert names.is_dns1123_subdomain(value) == errors


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("my-name", []),
        ("123-abc", []),
        ("a" * 63, []),
        ("a.b", ["must not contain dots"]),
        ("A", [LABEL_MSG]),
        ("a_b", [LABEL_MSG]),
        ("", [LABEL_MSG]),
        ("a" * 64, ["must be no more than 63 characters"]),
    ],
)
def test_dns1123_label(value: str, errors: list[str]) -> None:
    assert names.is_dns1123_label(value) == errors


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("my-name", []),
        ("abc-123", []),
        ("1abc", [DNS1035_MSG]),
        ("a.b", [DNS1035_MSG]),
        ("a" * 64, ["must be no more than 63 characters"]),
    ],
)
def test_dns1035_label(value: str, errors: list[str]) -> None:
    assert names.is_dns1035_label(value) == errors


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("app", []),
        ("MyName", []),
        ("my.name_x-1", []),
        ("example.com/app", []),
        ("kubernetes.io/cluster-service", []),
        ("-app", [KEY_NAME_MSG]),
        ("app-", [KEY_NAME_MSG]),
        ("", ["name part must be non-empty", KEY_NAME_MSG]),
        ("example.com/", ["name part must be non-empty", KEY_NAME_MSG]),
        ("/app", ["prefix part must be non-empty"]),
        ("Example.com/app", ["prefix part " + SUBDOMAIN_MSG]),
        ("a" * 64, ["name part must be no more than 63 bytes"]),
        ("a" * 254 + "/b", ["prefix part must be no more than 253 bytes"]),
        (
            "a/b/c",
            [
                "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
                "and '/' (e.g. 'example.com/MyName')"
            ],
        ),
    ],
)
def test_qualified_name(value: str, errors: list[str]) -> None:
    assert names.is_qualified_name(value) == errors


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("", []),
        ("MyValue", []),
        ("my_value", []),
        ("1.2-3", []),
        ("-x", [VALUE_MSG]),
        ("x y", [VALUE_MSG]),
        ("a" * 64, ["must be no more than 63 bytes"]),
        ("é", [VALUE_MSG]),
    ],
)
def test_label_value(value: str, errors: list[str]) -> None:
    assert names.is_valid_label_value(value) == errors


def test_label_value_length_counts_bytes() -> None:
    assert "must be no more than 63 bytes" in names.is_valid_label_value("é" * 32)


def test_c_identifier() -> None:
    assert names.is_c_identifier("MY_NAME") == []
    assert names.is_c_identifier("_x1") == []
    assert names.is_c_identifier("1x") == [
        "a valid C identifier must start with alphabetic character or '_', followed by a string of alphanumeric "
        "characters or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName', regex used for validation is "
        "'[A-Za-z_][A-Za-z0-9_]*')"
    ]


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("PATH", []),
        ("my.env-name", []),
        ("1ABC", ["a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or "
                  "'.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', "
                  "regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"]),
        ("..", ["must not be '..'"]),
        ("..x", ["must not start with '..'"]),
    ],
)
def test_strict_env_var_name(value: str, errors: list[str]) -> None:
    assert names.is_env_var_name(value) == errors


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("1ABC", []),
        ("my var!", []),
        ("", ["environment variable name must be non-empty"]),
        ("A=B", ["a valid environment variable name must consist only of printable ASCII characters other than '='"]),
        ("tab\there", ["a valid environment variable name must consist only of printable ASCII characters other than '='"]),
        ("é", ["a valid environment variable name must consist only of printable ASCII characters other than '='"]),
    ],
)
def test_relaxed_env_var_name(value: str, errors: list[str]) -> None:
    assert names.is_relaxed_env_var_name(value) == errors


def test_config_map_key() -> None:
    assert names.is_config_map_key("key.name") == []
    assert names.is_config_map_key(".") == ["must not be '.'"]
    assert names.is_config_map_key("a/b") == [
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
        "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
    ]


@pytest.mark.parametrize(
    ("port", "errors"),
    [
        ("http", []),
        ("h-t-t-p", []),
        ("web2", []),
        ("a" * 16, ["must be no more than 15 characters"]),
        ("HTTP", ["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                  "must contain at least one letter (a-z)"]),
        ("123", ["must contain at least one letter (a-z)"]),
        ("a--b", ["must not contain consecutive hyphens"]),
        ("-ab", ["must not begin or end with a hyphen"]),
        ("", ["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
              "must contain at least one letter (a-z)"]),
    ],
)
def test_port_name(port: str, errors: list[str]) -> None:
    assert names.is_valid_port_name(port) == errors


def test_port_number_and_range() -> None:
    assert names.is_valid_port_num(80) == []
    assert names.is_valid_port_num(0) == ["must be between 1 and 65535, inclusive"]
    assert names.is_valid_port_num(65536) == ["must be between 1 and 65535, inclusive"]
    assert names.is_in_range(5, 1, 3) == ["must be between 1 and 3, inclusive"]


def test_misc_formats() -> None:
    assert names.is_valid_percent("50%") == []
    assert names.is_valid_percent("50") != []
    assert names.is_http_header_name("X-Header") == []
    assert names.is_http_header_name("X Header") != []
    assert names.is_path_segment_name("..") == ["may not be '..'"]
    assert names.is_path_segment_name("a/b%") == ["may not contain '/'", "may not contain '%'"]


def test_generate_name_prefix_masks_trailing_dash() -> None:
    assert names.name_is_dns_subdomain("web-", prefix=True) == []
    assert names.name_is_dns_subdomain("web-", prefix=False) == [SUBDOMAIN_MSG]
    assert names.name_is_dns_label("web-", prefix=True) == []
    assert names.name_is_dns1035_label("1web-", prefix=True) == [DNS1035_MSG]


def test_generate_name_suffix_alphabet_and_length() -> None:
    random.seed(1)
    suffixes = {names.generate_name_suffix() for _ in range(200)}
    assert len(suffixes) > 150
    for suffix in suffixes:
        assert len(suffix) == 5
        assert set(suffix) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_generate_name_truncates_base() -> None:
    name = names.generate_name("x" * 100)
    assert len(name) == 63
    assert name.startswith("x" * 58)
    assert names.generate_name("web-").startswith("web-")
    assert names.is_dns1123_subdomain(names.generate_name("web-")) == []


def test_safe_encode_string() -> None:
    # rand.SafeEncodeString maps each character's code point onto the 27-letter alphabet.
    assert names.safe_encode_string("0123") == "".join("bcdfghjklmnpqrstvwxz2456789"[c % 27] for c in b"0123")
    assert names.safe_encode_string("5d8f") != names.safe_encode_string("5d8g")
