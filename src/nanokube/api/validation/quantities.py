"""Resource quantities as validation needs them: parse, compare, and the rules for resource names.

Parsing is ``nanokube.api.quantity`` (Go's scanner, exact ``Fraction`` values); this module adds the
resource-name rules (standard, extended, hugepages) and ``ValidateResourceQuantityValue``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from nanokube.api.quantity import ERR_FORMAT_WRONG, parse_quantity

from . import formats
from .field import Errors, invalid

QUANTITY_FORMAT_ERROR = ERR_FORMAT_WRONG

STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
STANDARD_RESOURCES = frozenset({
    "cpu", "memory", "ephemeral-storage", "storage", "pods", "services", "replicationcontrollers",
    "resourcequotas", "secrets", "configmaps", "persistentvolumeclaims", "services.nodeports",
    "services.loadbalancers", "requests.cpu", "requests.memory", "requests.storage", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage",
})


def parse(value: Any) -> Fraction | None:
    """The quantity's exact value, or None when it is not a quantity."""
    return None if parse_error(value) else parse_quantity(value)


def parse_error(value: Any) -> str | None:
    """Why the value is not a quantity (Go's message), or None when it is one."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return QUANTITY_FORMAT_ERROR
    try:
        parse_quantity(value)
    except (ValueError, TypeError) as err:
        return str(err) or QUANTITY_FORMAT_ERROR
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
    problem = parse_error(value)
    if problem:
        return [invalid(path, text(value), problem)]
    amount = parse_quantity(value)
    if amount < 0:
        return [invalid(path, text(value), "must be greater than or equal to 0")]
    if is_integer_resource(name) and amount.denominator != 1:
        return [invalid(path, text(value), "must be an integer")]
    return []
