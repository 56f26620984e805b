"""Taints and tolerations: whether one toleration tolerates one taint, as kube's ``Toleration.ToleratesTaint``.

Shared by everything that places or evicts Pods by taints: the scheduler's TaintToleration plugin, DaemonSet
placement and node lifecycle.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


def tolerates(toleration: JSON, taint: JSON) -> bool:
    """kube's ``Toleration.ToleratesTaint``: effect and key match when set; Exists ignores the value."""
    effect = toleration.get("effect") or ""
    if effect and effect != (taint.get("effect") or ""):
        return False
    key = toleration.get("key") or ""
    if key and key != (taint.get("key") or ""):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")
