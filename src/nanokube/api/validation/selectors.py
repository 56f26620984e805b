"""Label selectors inside objects: validation, emptiness, and whether they select a set of labels.

Thin glue over ``nanokube.api.labels`` (``ValidateLabelSelector`` and ``LabelSelectorAsSelector``) with the
semantics workload validation relies on: a missing selector selects nothing, an empty one everything, and a
selector ``LabelSelectorAsSelector`` refuses is "not usable" (validation reports it and skips the match).
"""

from __future__ import annotations

from typing import Any

from nanokube.api import labels

from .field import Errors, as_dict


def validate_label_selector(selector: Any, path: str) -> Errors:
    if not isinstance(selector, dict):
        return []
    return labels.validate_label_selector(selector, path)


def is_empty(selector: Any) -> bool:
    sel = as_dict(selector)
    return not sel.get("matchLabels") and not sel.get("matchExpressions")


def usable(selector: Any) -> bool:
    """Whether ``LabelSelectorAsSelector`` accepts it (known operators, valid keys and values)."""
    try:
        labels.selector_from_label_selector(selector if isinstance(selector, dict) else None)
    except ValueError:
        return False
    return True


def matches(selector: Any, have: Any) -> bool:
    """Whether the selector selects these labels (None selects nothing, {} everything, unusable nothing)."""
    try:
        chosen = labels.selector_from_label_selector(selector if isinstance(selector, dict) else None)
    except ValueError:
        return False
    return chosen.matches({k: v for k, v in as_dict(have).items() if isinstance(v, str)})
