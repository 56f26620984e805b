"""Required node placement: whether a Pod's ``nodeSelector`` and required node affinity admit a node.

This is kube's ``nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)``, shared by everything that decides
where a Pod may go without running the scheduler: the scheduler's NodeAffinity (and VolumeBinding and spread,
through it) and the DaemonSet controller's placement. Controllers may not import the scheduler, so the predicate
lives here, pure and free of I/O, next to ``api/taints.py``.

Semantics, as kube's: every ``nodeSelector`` label must be present with exactly that value; the required node
selector terms are ORed, and inside one term its ``matchExpressions`` (against the node's labels) and
``matchFields`` (only ``metadata.name`` is a field) are ANDed; an empty term matches nothing, and so does an
empty list of terms. Operators are In, NotIn, Exists, DoesNotExist, and Gt/Lt comparing one integer; an unknown
operator or a malformed requirement makes its term fail rather than raise. Callers pass the node's name and
labels rather than a Node object, so the scheduler can match its cached node rows without building one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

JSON = dict[str, Any]
NAME_FIELD = "metadata.name"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


def requirement_matches(req: JSON, values_of: Mapping[str, str]) -> bool:
    """One node selector requirement against a key/value map (labels, or ``{NAME_FIELD: name}``)."""
    key, op = req.get("key") or "", req.get("operator") or ""
    values = [str(v) for v in req.get("values") or []]
    present = key in values_of
    if op == "In":
        return present and values_of[key] in values
    if op == "NotIn":
        return not present or values_of[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(values) == 1:
        try:
            have, want = int(values_of[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def term_matches(term: JSON, name: str, labels: Mapping[str, str]) -> bool:
    """One node selector term against the node called ``name`` with ``labels``: its expressions and fields
    ANDed; an empty term matches nothing."""
    expressions = [e for e in term.get("matchExpressions") or [] if isinstance(e, dict)]
    fields = [f for f in term.get("matchFields") or [] if isinstance(f, dict)]
    if not expressions and not fields:
        return False
    if not all(requirement_matches(e, labels) for e in expressions):
        return False
    return all(f.get("key") == NAME_FIELD and requirement_matches(f, {NAME_FIELD: name}) for f in fields)


def required_terms(spec: JSON) -> list[JSON] | None:
    """The pod spec's required node selector terms, or None when it has no required node affinity (which
    admits every node, unlike an empty list of terms, which admits none)."""
    node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = node_affinity.get(REQUIRED)
    if not isinstance(required, dict):
        return None
    return [t for t in required.get("nodeSelectorTerms") or [] if isinstance(t, dict)]


def selector_matches(node_selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A ``nodeSelector``: every key present in ``labels`` with exactly its value."""
    return all(k in labels and labels[k] == v for k, v in node_selector.items())


def pod_matches_node(spec: JSON, name: str, labels: Mapping[str, str]) -> bool:
    """Whether the pod spec's ``nodeSelector`` and required node affinity both admit the node called ``name``
    with ``labels``."""
    if not selector_matches(spec.get("nodeSelector") or {}, labels):
        return False
    terms = required_terms(spec)
    return terms is None or any(term_matches(t, name, labels) for t in terms)


def pod_fits_node(spec: JSON, node: JSON) -> bool:
    """``pod_matches_node`` for a Node object."""
    meta = node.get("metadata") or {}
    return pod_matches_node(spec, str(meta.get("name") or ""), meta.get("labels") or {})
