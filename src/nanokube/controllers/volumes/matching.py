"""Choosing a volume for a claim, as kube's PV controller does (``findBestMatchForClaim``; no I/O).

Volumes are grouped by their access-mode sets. Groups that offer every mode the claim asks for are tried from
the fewest modes up, so a ReadWriteOnce claim takes a ReadWriteOnce-only volume before a more capable one;
inside a group the smallest volume that is large enough wins. A volume pre-bound to the claim (its
``claimRef`` names it) is taken at once, whatever its phase, class or labels. For a WaitForFirstConsumer claim
the controller binds nothing else: the scheduler chooses (it pre-binds a volume, or asks for provisioning).
"""

from __future__ import annotations

from collections.abc import Iterable

from nanokube.api.labels import selector_from_label_selector

from .common import (
    JSON,
    claim_class,
    is_bound_to,
    meta,
    phase,
    requested_storage,
    spec,
    volume_capacity,
    volume_class,
)


def _modes(obj: JSON) -> frozenset[str]:
    return frozenset(str(m) for m in spec(obj).get("accessModes") or [])


def volume_mode_mismatch(pvc: JSON, pv: JSON) -> bool:
    """``CheckVolumeModeMismatches``: both default to Filesystem."""
    return (spec(pvc).get("volumeMode") or "Filesystem") != (spec(pv).get("volumeMode") or "Filesystem")


def unsatisfied_because(pv: JSON, pvc: JSON) -> str:
    """``checkVolumeSatisfyClaim``: why a volume the claim names cannot serve it ("" when it can)."""
    if meta(pv).get("deletionTimestamp"):
        return f'the volume is marked for deletion "{meta(pv).get("name")}"'
    if volume_capacity(pv) < requested_storage(pvc):
        return "requested PV is too small"
    if volume_class(pv) != claim_class(pvc):
        return "storageClassName does not match"
    if volume_mode_mismatch(pvc, pv):
        return "incompatible volumeMode"
    if not _modes(pvc) <= _modes(pv):
        return "incompatible accessMode"
    return ""


def find_best_match(pvc: JSON, volumes: Iterable[JSON], delay_binding: bool) -> JSON | None:
    wanted = _modes(pvc)
    groups: dict[frozenset[str], list[JSON]] = {}
    for pv in volumes:
        groups.setdefault(_modes(pv), []).append(pv)
    usable = sorted((m for m in groups if wanted <= m), key=lambda m: (len(m), sorted(m)))
    for modes in usable:
        found = _match_in_group(pvc, groups[modes], delay_binding)
        if found is not None:
            return found
    return None


def _match_in_group(pvc: JSON, volumes: list[JSON], delay_binding: bool) -> JSON | None:
    requested = requested_storage(pvc)
    wanted_class = claim_class(pvc)
    raw_selector = spec(pvc).get("selector")
    selector = selector_from_label_selector(raw_selector) if raw_selector is not None else None
    best: JSON | None = None
    for pv in sorted(volumes, key=lambda v: str(meta(v).get("name", ""))):
        size = volume_capacity(pv)
        if size < requested or volume_mode_mismatch(pvc, pv) or meta(pv).get("deletionTimestamp"):
            continue
        if is_bound_to(pv, pvc):
            return pv
        if delay_binding:
            continue
        if phase(pv) != "Available" or spec(pv).get("claimRef"):
            continue
        if selector is not None and not selector.matches(meta(pv).get("labels") or {}):
            continue
        if volume_class(pv) != wanted_class:
            continue
        if best is None or size < volume_capacity(best):
            best = pv
    return best
