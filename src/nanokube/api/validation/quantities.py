"""Resource quantities as validation needs them: parse, compare, and the rules for resource names.

A small private parser (exact, via ``Fraction``) so that validation does not depend on the order in which
packages land; it accepts what ``resource.ParseQuantity`` accepts. ``nanokube.api.quantity`` is the full
implementation (formatting, rounding) the rest of the system uses.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from . import formats
from .field import Errors, invalid

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
            "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
            "P": Fraction(10**15), "E": Fraction(10**18)}

QUANTITY_FORMAT_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"

STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
STANDARD_RESOURCES = frozenset({
    "cpu", "memory", "ephemeral-storage", "storage", "pods", "services", "replicationcontrollers",
    "resourcequotas", "secrets", "configmaps", "persistentvolumeclaims", "services.nodeports",
    "services.loadbalancers", "requests.cpu", "requests.memory", "requests.storage", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage",
})


def parse(value: Any) -> Fraction | None:
    """The quantity's exact value, or None when it is not a quantity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Fraction(value)
    if not isinstance(value, str):
        return None
    m = _QUANTITY.match(value)
    if not m or m.group(1).count(".") > 1 or m.group(1) in (".", "+.", "-."):
        return None
    number, suffix = Fraction(m.group(1)), m.group(2)
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    exp = re.fullmatch(r"[eE]([-+]?[0-9]+)", suffix)
    if exp:
        return number * Fraction(10) ** int(exp.group(1))
    return None


def text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def overcommit_allowed(name: str) -> bool:
    """Native (unprefixed or kubernetes.io/) resources other than hugepages may be overcommitted."""
    native = "/" not in name or name.split("/", 1)[0].endswith("kubernetes.io")
    return native and not is_hugepages(name)


def is_integer_resource(name: str) -> bool:
    """Extended resources (``example.com/gpu``) must be whole numbers."""
    return "/" in name and not name.split("/", 1)[0].endswith("kubernetes.io") and not name.startswith("requests.")


def validate_resource_name(name: str, path: str) -> Errors:
    errs = [invalid(path, name, msg) for msg in formats.is_qualified_name(name)]
    if errs:
        return errs
    if "/" not in name and name not in STANDARD_RESOURCES and not is_hugepages(name):
        return [invalid(path, name, "must be a standard resource type or fully qualified")]
    return []


def validate_container_resource_name(name: str, path: str) -> Errors:
    errs = validate_resource_name(name, path)
    if "/" not in name and name not in STANDARD_CONTAINER_RESOURCES and not is_hugepages(name):
        errs.append(invalid(path, name, "must be a standard resource for containers"))
    return errs


def validate_value(name: str, value: Any, path: str) -> Errors:
    """``ValidateResourceQuantityValue``: a well-formed, non-negative quantity; whole for extended resources."""
    amount = parse(value)
    if amount is None:
        return [invalid(path, text(value), QUANTITY_FORMAT_ERROR)]
    if amount < 0:
        return [invalid(path, text(value), "must be greater than or equal to 0")]
    if is_integer_resource(name) and amount.denominator != 1:
        return [invalid(path, text(value), "must be an integer")]
    return []
