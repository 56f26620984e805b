"""Resource quantities (``100m``, ``1.5Gi``, ``1e3``) parsed and printed as ``resource.Quantity`` does.

Values are exact ``Fraction``s, never floats. Parsing follows apimachinery's scanner and suffix table: a sign,
digits with an optional fraction, then a binary-SI (``Ki``..``Ei``), decimal-SI (``n u m "" k M G T P E``) or
exponent (``e3``, ``E-3``) suffix. As in Go, a value is rounded up (away from zero) to a whole number of nano
units, a binary-SI value is capped at 2^63-1, and the quantity remembers its format so that printing gives the
canonical form Kubernetes returns: the largest suffix that loses nothing and needs no fraction (``1.5`` ->
``1500m``, ``1.5Gi`` -> ``1536Mi``, ``1024Mi`` -> ``1Gi``, ``0`` -> ``0``). Where Go keeps the caller's own text
(an already canonical-looking string such as ``500m``, ``1E3`` or ``+1``), so does ``Quantity``.

Errors are ``ValueError`` with Go's texts (``ERR_FORMAT_WRONG``, ``ERR_NUMERIC``, ``ERR_SUFFIX``).
``value``/``milli_value`` round up like Go's ``Value()``/``MilliValue()`` (away from zero). Exponents beyond
+-``MAX_EXPONENT`` are refused with ``ERR_NUMERIC`` rather than building enormous integers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import total_ordering
from typing import Any

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

ERR_FORMAT_WRONG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"

MAX_EXPONENT = 4000
_NANO = 10**9
_INT64_MAX = 2**63 - 1
_DIGITS = frozenset("0123456789")
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_EXPONENT_RE = re.compile(r"[+-]?[0-9]+\Z")
_DECIMAL_SUFFIXES = {"": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXPONENT = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_BY_POWER = {e // 10: s for s, e in _BINARY_SUFFIXES.items()}

Number = int | float | Fraction


@dataclass(frozen=True, slots=True)
class _Scan:
    positive: bool
    num: str  # integer digits without leading zeros ("0" when none)
    denom: str  # fraction digits
    suffix: str


def _scan(text: str) -> _Scan:
    """Split a quantity string as Go's ``parseQuantityString`` does, with its leniencies ("-", ".", "1.")."""
    n = len(text)
    pos = 0
    positive = True
    if n and text[0] in "+-":
        positive = text[0] == "+"
        pos = 1
    while pos < n and text[pos] == "0":
        pos += 1
    if pos >= n:
        return _Scan(positive, "0", "", "")
    start = pos
    while pos < n and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < n and text[pos] == ".":
        pos += 1
        start = pos
        while pos < n and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < n and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < n and text[pos] in "+-":
        pos += 1
    while pos < n and text[pos] in _DIGITS:
        pos += 1
    if pos < n:
        raise ValueError(ERR_FORMAT_WRONG)
    return _Scan(positive, num, denom, text[suffix_start:])


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) for a suffix; ValueError(ERR_SUFFIX) when it means nothing."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE" and _EXPONENT_RE.match(suffix[1:]):
        return 10, int(suffix[1:]), DECIMAL_EXPONENT
    raise ValueError(ERR_SUFFIX)


def _round_up_nano(value: Fraction) -> Fraction:
    """Round away from zero to a whole number of nano units (1e-9)."""
    if (value * _NANO).denominator == 1:
        return value
    nanos = math.ceil(abs(value) * _NANO)
    return Fraction(nanos if value > 0 else -nanos, _NANO)


def _keeps_text(scan: _Scan, base: int, exponent: int, fmt: str) -> bool:
    """Whether Go's fast path keeps the input string as the quantity's printed form."""
    if base == 2:
        if exponent < 0 or scan.denom:
            return False
        precision = 15 - len(scan.num) - int(exponent * 3 / 10) - 1
        scale = 0
    else:
        precision = 18 - len(scan.num) - len(scan.denom)
        scale = exponent - len(scan.denom)
    shifted = scan.num + scan.denom
    if precision < 0 or scale < -9 or int(shifted) * (1 << exponent if base == 2 else 1) > _INT64_MAX:
        return False
    if base == 2:
        return int(shifted) & 0x07 != 0
    return scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"


def _parse(text: str) -> Quantity:
    if not text:
        raise ValueError(ERR_FORMAT_WRONG)
    if text == "0":
        return Quantity(Fraction(0), DECIMAL_SI, "0")
    scan = _scan(text)
    base, exponent, fmt = _interpret(scan.suffix)
    if abs(exponent) > MAX_EXPONENT or len(scan.num) + len(scan.denom) > MAX_EXPONENT:
        raise ValueError(ERR_NUMERIC)
    digits = int(scan.num + scan.denom)
    if base == 2:
        value = Fraction(digits << exponent, 10 ** len(scan.denom))
    else:
        shift = exponent - len(scan.denom)
        value = Fraction(digits * 10**shift) if shift >= 0 else Fraction(digits, 10**-shift)
    magnitude = _round_up_nano(value)
    if fmt == BINARY_SI:
        magnitude = min(magnitude, Fraction(_INT64_MAX))
        if 0 < magnitude < 1:
            fmt = DECIMAL_SI
    kept = text if _keeps_text(scan, base, exponent, fmt) else None
    return Quantity(magnitude if scan.positive else -magnitude, fmt, kept)


def _canonical(value: Fraction, fmt: str) -> str:
    """Go's ``CanonicalizeBytes``: the biggest suffix with an integral mantissa and no loss."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    magnitude = abs(_round_up_nano(value))
    if fmt == BINARY_SI and magnitude >= 1024 and magnitude.denominator == 1:
        number, power = magnitude.numerator, 0
        while number % 1024 == 0 and power < 6:
            number //= 1024
            power += 1
        return f"{sign}{number}{_BINARY_BY_POWER.get(power, '')}"
    mantissa, exp = int(magnitude * _NANO), -9
    while mantissa % 10 == 0:
        mantissa //= 10
        exp += 1
    mantissa *= 10 ** (exp % 3)
    exp -= exp % 3
    if fmt == DECIMAL_EXPONENT:
        return f"{sign}{mantissa}{'' if exp == 0 else f'e{exp}'}"
    if exp > 18:  # past "E": keep the biggest suffix rather than dropping it
        mantissa *= 10 ** (exp - 18)
        exp = 18
    return f"{sign}{mantissa}{_DECIMAL_BY_EXPONENT[exp]}"


def _ceil_away(value: Fraction) -> int:
    whole = math.ceil(abs(value))
    return whole if value >= 0 else -whole


@total_ordering
@dataclass(frozen=True, eq=False, slots=True)
class Quantity:
    """An exact value plus the format it prints in. Compares and hashes by value alone, like Go's ``Cmp``."""

    value: Fraction
    format: str = DECIMAL_SI
    text: str | None = field(default=None, repr=False)  # the input, when Go would print it unchanged

    @classmethod
    def parse(cls, text: str | Number) -> Quantity:
        """``resource.ParseQuantity``; numbers are read from their decimal text. No whitespace trimming."""
        if isinstance(text, bool):
            raise ValueError(ERR_FORMAT_WRONG)
        if isinstance(text, Fraction):
            return cls(text)
        return _parse(text if isinstance(text, str) else repr(text) if isinstance(text, float) else str(text))

    @classmethod
    def from_json(cls, value: Any) -> Quantity:
        """What ``UnmarshalJSON`` accepts: a string (trimmed), a JSON number, or null (zero)."""
        if value is None:
            return cls(Fraction(0))
        return cls.parse(value.strip() if isinstance(value, str) else value)

    def __str__(self) -> str:
        return self.text if self.text is not None else _canonical(self.value, self.format)

    def milli_value(self) -> int:
        return _ceil_away(self.value * 1000)

    def int_value(self) -> int:
        return _ceil_away(self.value)

    def is_zero(self) -> bool:
        return self.value == 0

    def __add__(self, other: Quantity) -> Quantity:
        # Go's Add: a zero receiver takes the other side's format.
        return Quantity(self.value + other.value, other.format if self.value == 0 else self.format)

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.value - other.value, other.format if self.value == 0 else self.format)

    def __neg__(self) -> Quantity:
        return Quantity(-self.value, self.format)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self.value == other.value
        if isinstance(other, int | Fraction):
            return self.value == other
        return NotImplemented

    def __lt__(self, other: Quantity | int | Fraction) -> bool:
        return self.value < (other.value if isinstance(other, Quantity) else other)

    def __hash__(self) -> int:
        return hash(self.value)


def _as_quantity(q: Quantity | str | Number) -> Quantity:
    return q if isinstance(q, Quantity) else Quantity.parse(q)


def parse_quantity(text: str | Number) -> Fraction:
    """The exact value of a quantity string (or number); ValueError with Go's message when malformed."""
    return Quantity.parse(text).value


def is_valid_quantity(text: Any) -> bool:
    try:
        Quantity.parse(text)
    except (ValueError, TypeError):
        return False
    return True


def format_quantity(q: Quantity | str | Number, fmt: str | None = None) -> str:
    """The canonical text. A string or Quantity prints in its own format unless ``fmt`` is given; a bare number
    prints as ``fmt`` (default DecimalSI): ``format_quantity(Fraction(3, 2) * 2**30, BINARY_SI) == "1536Mi"``."""
    if isinstance(q, str | Quantity):
        quantity = _as_quantity(q)
        return str(quantity) if fmt is None or fmt == quantity.format else _canonical(quantity.value, fmt)
    return _canonical(Fraction(q), fmt or DECIMAL_SI)


def canonicalize(text: str) -> str:
    """Parse and print back, as the API server does with every quantity it stores."""
    return str(Quantity.parse(text))


def _value_of(q: Quantity | str | Number) -> Fraction:
    # Floats go through their decimal text: Fraction(0.1) would carry binary noise into the rounding.
    if isinstance(q, Quantity):
        return q.value
    if isinstance(q, int | Fraction) and not isinstance(q, bool):
        return Fraction(q)
    return parse_quantity(q)


def value(q: Quantity | str | Number) -> int:
    """Go's ``Value()``: the value rounded up (away from zero) to an integer: ``value("1.2") == 2``."""
    return _ceil_away(_value_of(q))


def milli_value(q: Quantity | str | Number) -> int:
    """Go's ``MilliValue()``: thousandths, rounded up (away from zero): ``milli_value("0.1") == 100``."""
    return _ceil_away(_value_of(q) * 1000)
