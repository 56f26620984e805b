"""Label selectors inside objects: their validation (``ValidateLabelSelector``) and matching against labels.

Workload validation needs both: a Deployment's selector must be well formed and must select its own pod
template. Kept here, small and private, so validation stands alone; ``nanokube.api.labels`` is the full
selector library (string syntax, requirements) used by list/watch filtering.
"""

from __future__ import annotations

from typing import Any

from . import formats
from .field import Errors, as_dict, as_list, as_str, child, forbidden, index, invalid, required
from .meta import validate_label_name, validate_labels

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(selector: Any, path: str) -> Errors:
    if not isinstance(selector, dict):
        return []
    errs = validate_labels(selector.get("matchLabels"), child(path, "matchLabels"))
    for i, expr in enumerate(as_list(selector.get("matchExpressions"))):
        errs.extend(_requirement(as_dict(expr), index(child(path, "matchExpressions"), i)))
    return errs


def _requirement(expr: dict[str, Any], path: str) -> Errors:
    errs: Errors = []
    operator, values = expr.get("operator"), as_list(expr.get("values"))
    if operator in ("In", "NotIn"):
        if not values:
            errs.append(required(child(path, "values"), "must be specified when `operator` is 'In' or 'NotIn'"))
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            errs.append(forbidden(child(path, "values"),
                                  "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    else:
        errs.append(invalid(child(path, "operator"), operator if operator is not None else "",
                            "not a valid selector operator"))
    errs.extend(validate_label_name(as_str(expr.get("key")), child(path, "key")))
    for i, value in enumerate(values):
        text = as_str(value)
        errs.extend(invalid(index(child(path, "values"), i), text, m) for m in formats.is_valid_label_value(text))
    return errs


def is_empty(selector: Any) -> bool:
    sel = as_dict(selector)
    return not sel.get("matchLabels") and not sel.get("matchExpressions")


def usable(selector: Any) -> bool:
    """Whether ``LabelSelectorAsSelector`` would accept it (known operators, values where required)."""
    for expr in as_list(as_dict(selector).get("matchExpressions")):
        expr = as_dict(expr)
        op, values = expr.get("operator"), as_list(expr.get("values"))
        if op not in _OPERATORS or (op in ("In", "NotIn") and not values):
            return False
    return True


def matches(selector: Any, labels: Any) -> bool:
    """Whether the selector selects these labels; an empty selector selects everything."""
    sel, have = as_dict(selector), as_dict(labels)
    for k, v in as_dict(sel.get("matchLabels")).items():
        if have.get(k) != v:
            return False
    for expr in as_list(sel.get("matchExpressions")):
        expr = as_dict(expr)
        k, op, values = as_str(expr.get("key")), expr.get("operator"), as_list(expr.get("values"))
        present = k in have
        if op == "In" and (not present or have[k] not in values):
            return False
        if op == "NotIn" and present and have[k] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True
