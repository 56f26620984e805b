"""``spec.successPolicy`` of Indexed Jobs (``success_policy.go``): a rule is met when the succeeded indexes
cover its ``succeededIndexes`` (or at least ``succeededCount`` of them), or, without indexes, when at least
``succeededCount`` indexes succeeded. The first met rule's position goes into the condition message.
"""

from __future__ import annotations

from typing import Any

from .indexed import Intervals, parse_indexes, total


def match(policy: dict[str, Any] | None, completions: int, succeeded: Intervals) -> str | None:
    """The ``SuccessCriteriaMet`` message when a rule is met, else None."""
    if not policy or not succeeded:
        return None
    for index, rule in enumerate(policy.get("rules") or []):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = parse_indexes(rule["succeededIndexes"], completions)
            if required and _covers(required, succeeded, count):
                return f"Matched rules at index {index}"
        elif count is not None and total(succeeded) >= int(count):
            return f"Matched rules at index {index}"
    return None


def _covers(required: Intervals, succeeded: Intervals, count: Any) -> bool:
    contained = 0
    for r_first, r_last in required:
        for s_first, s_last in succeeded:
            overlap = min(r_last, s_last) - max(r_first, s_first) + 1
            if overlap > 0:
                contained += overlap
    return contained == total(required) or (count is not None and contained >= int(count))
