"""Quantities: values, formats, canonical text and errors, against the cases apimachinery tests."""

from __future__ import annotations

from fractions import Fraction

import pytest

from nanokube.api.quantity import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    ERR_FORMAT_WRONG,
    ERR_NUMERIC,
    ERR_SUFFIX,
    Quantity,
    canonicalize,
    format_quantity,
    is_valid_quantity,
    milli_value,
    parse_quantity,
    value,
)

Ki, Mi, Gi, Ti, Pi, Ei = (2**10, 2**20, 2**30, 2**40, 2**50, 2**60)


def dec(mantissa: int, exponent: int) -> Fraction:
    return Fraction(mantissa) * Fraction(10) ** exponent


@pytest.mark.parametrize(
    ("text", "expected", "fmt"),
    [
        ("0", 0, DECIMAL_SI),
        ("0n", 0, DECIMAL_SI),
        ("0Ki", 0, BINARY_SI),
        ("0M", 0, DECIMAL_SI),
        ("1", 1, DECIMAL_SI),
        ("1Ki", Ki, BINARY_SI),
        ("7Mi", 7 * Mi, BINARY_SI),
        ("6Gi", 6 * Gi, BINARY_SI),
        ("5Ti", 5 * Ti, BINARY_SI),
        ("4Pi", 4 * Pi, BINARY_SI),
        ("3Ei", 3 * Ei, BINARY_SI),
        ("5n", dec(5, -9), DECIMAL_SI),
        ("4u", dec(4, -6), DECIMAL_SI),
        ("3m", dec(3, -3), DECIMAL_SI),
        ("8k", dec(8, 3), DECIMAL_SI),
        ("7M", dec(7, 6), DECIMAL_SI),
        ("6G", dec(6, 9), DECIMAL_SI),
        ("5T", dec(5, 12), DECIMAL_SI),
        ("2P", dec(2, 15), DECIMAL_SI),
        ("1E", dec(1, 18), DECIMAL_SI),
        ("1E-3", dec(1, -3), DECIMAL_EXPONENT),
        ("1e3", dec(1, 3), DECIMAL_EXPONENT),
        ("1E6", dec(1, 6), DECIMAL_EXPONENT),
        ("1e14", dec(1, 14), DECIMAL_EXPONENT),
        ("100.035k", 100035, DECIMAL_SI),
        ("0.001", dec(1, -3), DECIMAL_SI),
        ("0.0005k", dec(5, -1), DECIMAL_SI),
        ("0.50000", dec(5, -1), DECIMAL_SI),
        ("0.5e-2", dec(5, -3), DECIMAL_EXPONENT),
        ("10.035M", dec(10035, 3), DECIMAL_SI),
        ("1.3E+6", dec(13, 5), DECIMAL_EXPONENT),
        ("1.53E12", dec(153, 10), DECIMAL_EXPONENT),
        ("6.987654321G", 6987654321, DECIMAL_SI),
        ("1.01E", dec(101, 16), DECIMAL_SI),
        # rounded up to whole nano units
        ("3.001n", dec(4, -9), DECIMAL_SI),
        ("1.1E-9", dec(2, -9), DECIMAL_EXPONENT),
        ("0.0000000001", dec(1, -9), DECIMAL_SI),
        ("0.9n", dec(1, -9), DECIMAL_SI),
        ("0.00000012345", dec(124, -9), DECIMAL_SI),
        ("-0.00000012345", dec(-124, -9), DECIMAL_SI),
        # binary values are capped at 2^63-1
        ("9Ei", 2**63 - 1, BINARY_SI),
        ("9223372036854775807Ki", 2**63 - 1, BINARY_SI),
        ("12E", dec(12, 18), DECIMAL_SI),
        ("100.035Ki", dec(10243584, -2), BINARY_SI),
        ("0.5Mi", Mi // 2, BINARY_SI),
        ("0.05Gi", dec(536870912, -1), BINARY_SI),
        ("0.000000000001Ki", dec(2, -9), DECIMAL_SI),  # rounds up, and a binary value under 1 turns decimal
        (".001", dec(1, -3), DECIMAL_SI),
        (".0001k", dec(100, -3), DECIMAL_SI),
        ("1.", 1, DECIMAL_SI),
        ("1.G", dec(1, 9), DECIMAL_SI),
        ("-1.5Gi", -3 * Gi // 2, BINARY_SI),
        ("+2", 2, DECIMAL_SI),
        ("-", 0, DECIMAL_SI),  # Go's scanner reads a bare sign as zero
    ],
)
def test_parse_values_and_formats(text: str, expected: int | Fraction, fmt: str) -> None:
    quantity = Quantity.parse(text)
    assert quantity.value == expected
    assert quantity.format == fmt
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1Ki", "1Ki"),
        ("1Gi", "1Gi"),
        ("1024Mi", "1Gi"),
        ("307200Ki", "300Mi"),
        ("1025024Mi", "1001Gi"),
        ("1024Gi", "1Ti"),
        ("2048Ki", "2Mi"),
        ("1536Mi", "1536Mi"),
        ("1.5Gi", "1536Mi"),
        ("1000M", "1G"),
        ("0.001T", "1G"),
        ("1000u", "1m"),
        ("1.08", "1080m"),
        ("1080000000n", "1080m"),
        ("1.5", "1500m"),
        ("0.5", "500m"),
        ("500m", "500m"),
        ("0", "0"),
        ("00", "0"),
        ("0Ki", "0"),
        ("0.0", "0"),
        (".001e12", "1e9"),
        ("0.001e0", "1e-3"),
        ("1000e-12", "1e-9"),
        ("1.2e3", "1200"),
        ("1.3E+6", "1300e3"),
        ("1000e-3", "1"),
        (".001Ki", "1024m"),
        (".000001Ki", "1024u"),
        (".000000001Ki", "1024n"),
        (".000000000001Ki", "2n"),
        ("5000m", "5"),
        ("0.5Ki", "512"),
        ("1023Ki", "1023Ki"),
        ("1025", "1025"),
        ("0.05Gi", "53687091200m"),  # not a whole number of bytes: printed as decimal
        ("-1.5Gi", "-1536Mi"),
        ("-1024Mi", "-1Gi"),
        ("-0.5", "-500m"),
        ("9Ei", "9223372036854775807"),
        ("1000000E", "1000000E"),
        # Go keeps the input text when its fast path finds it "canonical"
        ("1e3", "1e3"),
        ("1E3", "1E3"),
        ("12E", "12E"),
        ("+1", "+1"),
        ("01", "01"),
        ("100.035k", "100.035k"),
        ("1.", "1."),
        ("1.G", "1.G"),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    assert str(Quantity.parse(text)) == canonical
    assert canonicalize(text) == canonical
    assert format_quantity(text) == canonical


@pytest.mark.parametrize("text", ["1Gi", "300Mi", "6Ki", "1001Gi", "5", "500m", "1G", "1m", "80m", "1080m", "3k",
                                  "1025", "1e9", "1e-3", "80e-3", "300e6", "1n", "1080n", "1u", "1234567M"])
def test_canonical_strings_are_fixed_points(text: str) -> None:
    assert canonicalize(canonicalize(text)) == canonicalize(text) == text
    assert canonicalize("-" + text) == "-" + text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", ERR_FORMAT_WRONG),
        ("1.1.M", ERR_FORMAT_WRONG),
        ("1+1.0M", ERR_FORMAT_WRONG),
        ("0.1am", ERR_FORMAT_WRONG),
        ("aoeu", ERR_FORMAT_WRONG),
        (" 1", ERR_FORMAT_WRONG),
        ("1 ", ERR_FORMAT_WRONG),
        ("1Mi5x", ERR_FORMAT_WRONG),
        ("0.1mi", ERR_SUFFIX),
        (".5i", ERR_SUFFIX),
        ("1i", ERR_SUFFIX),
        ("-3.01i", ERR_SUFFIX),
        ("-3.01e-", ERR_SUFFIX),
        ("1K", ERR_SUFFIX),
        ("1e", ERR_SUFFIX),
        ("1Mi5", ERR_SUFFIX),
        ("1e99999", ERR_NUMERIC),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Quantity.parse(text)
    assert str(caught.value) == message
    assert not is_valid_quantity(text)


def test_error_text_is_kubes() -> None:
    assert ERR_FORMAT_WRONG == (
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


def test_numbers_and_json() -> None:
    assert Quantity.parse(2).value == 2
    assert str(Quantity.parse(0.5)) == "500m"
    assert str(Quantity.parse(1e-7)) == "100e-9"  # repr "1e-07" carries an exponent suffix
    assert str(Quantity.parse(1.5e9)) == "1500M"
    assert str(Quantity.from_json(" 100m ")) == "100m"
    assert Quantity.from_json(None).is_zero()
    assert str(Quantity.from_json(3)) == "3"
    assert not is_valid_quantity(True)
    assert not is_valid_quantity(None)
    assert not is_valid_quantity(float("nan"))
    assert is_valid_quantity("250Mi")


@pytest.mark.parametrize(
    ("text", "milli", "whole"),
    [
        ("1", 1000, 1),
        ("100m", 100, 1),
        ("1.2", 1200, 2),
        ("0.1", 100, 1),
        ("1n", 1, 1),
        ("1500u", 2, 1),
        ("1Ki", 1024000, 1024),
        ("-1.5", -1500, -2),
        ("-100m", -100, -1),
        ("0", 0, 0),
    ],
)
def test_milli_value_and_value(text: str, milli: int, whole: int) -> None:
    assert milli_value(text) == milli
    assert value(text) == whole
    quantity = Quantity.parse(text)
    assert quantity.milli_value() == milli
    assert quantity.int_value() == whole
    assert value(quantity) == whole


def test_value_of_numbers() -> None:
    assert milli_value(0.1) == 100  # via the decimal text, not the binary float
    assert milli_value(Fraction(1, 3)) == 334
    assert value(3) == 3


@pytest.mark.parametrize(
    ("number", "fmt", "text"),
    [
        (Fraction(3, 2) * Gi, BINARY_SI, "1536Mi"),
        (Gi, BINARY_SI, "1Gi"),
        (Gi, DECIMAL_SI, "1073741824"),
        (1000, DECIMAL_SI, "1k"),
        (1000, DECIMAL_EXPONENT, "1e3"),
        (Fraction(1, 2), BINARY_SI, "500m"),
        (Fraction(1, 3), DECIMAL_SI, "333333334n"),
        (0, BINARY_SI, "0"),
        (-2048, BINARY_SI, "-2Ki"),
        (100, None, "100"),
    ],
)
def test_format_numbers(number: int | Fraction, fmt: str | None, text: str) -> None:
    assert format_quantity(number, fmt) == text


def test_format_string_in_other_format() -> None:
    assert format_quantity("1Gi", DECIMAL_SI) == "1073741824"
    assert format_quantity("1024", BINARY_SI) == "1Ki"
    assert format_quantity("1Gi", BINARY_SI) == "1Gi"


def test_comparison_and_arithmetic() -> None:
    assert Quantity.parse("1Gi") == Quantity.parse("1024Mi")
    assert Quantity.parse("1") == Quantity.parse("1000m") == 1
    assert Quantity.parse("500m") < Quantity.parse("1")
    assert Quantity.parse("2") >= Quantity.parse("2000m")
    assert max(Quantity.parse("1Ki"), Quantity.parse("1k")) == 1024
    assert len({Quantity.parse("1Gi"), Quantity.parse("1024Mi")}) == 1
    total = Quantity.parse("1Gi") + Quantity.parse("512Mi")
    assert str(total) == "1536Mi"
    assert str(Quantity.parse("0") + Quantity.parse("100m")) == "100m"
    assert str(Quantity.parse("0") + Quantity.parse("1Gi")) == "1Gi"  # a zero takes the other's format
    assert str(Quantity.parse("1") - Quantity.parse("250m")) == "750m"
    assert str(-Quantity.parse("1Gi")) == "-1Gi"
