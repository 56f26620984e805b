"""``persistentVolumeClaimRetentionPolicy`` as owner references on a member's claims (no I/O).

Kubernetes does not delete claims itself: it lets the garbage collector do it by giving a claim a controller
reference to whatever should take it along. ``whenDeleted: Delete`` makes the StatefulSet the claim's owner (the
claim goes with the set); ``whenScaled: Delete`` makes a Pod scaled away (outside the ordinal range) the owner (the
claim goes with that Pod). ``Retain`` means no reference from us. References naming our set or Pod with another
uid are stale (an earlier set or Pod of the same name): such claims are left alone, and a claim still owned by an
earlier Pod blocks the creation of its successor until the collector has removed it.
"""

from __future__ import annotations

import logging

from nanokube.client.interface import JSON

from .identity import API_VERSION, KIND, in_ordinal_range, spec

log = logging.getLogger(__name__)
RETAIN = "Retain"
DELETE = "Delete"
_POD = ("v1", "Pod")
_SET = (API_VERSION, KIND)


def retention_policy(sts: JSON) -> tuple[str, str]:
    """(whenDeleted, whenScaled), ``Retain`` where unset."""
    policy = spec(sts).get("persistentVolumeClaimRetentionPolicy") or {}
    return policy.get("whenDeleted") or RETAIN, policy.get("whenScaled") or RETAIN


def _refs(claim: JSON) -> list[JSON]:
    return list(claim["metadata"].get("ownerReferences") or [])


def _matches(ref: JSON, obj: JSON, kind: tuple[str, str]) -> bool:
    """The reference names ``obj`` by API version, kind and name (whatever its uid)."""
    return (ref.get("apiVersion"), ref.get("kind")) == kind and ref.get("name") == obj["metadata"].get("name")


def _uid(obj: JSON) -> str:
    return obj["metadata"].get("uid") or ""


def has_owner_ref(claim: JSON, owner: JSON) -> bool:
    uid = _uid(owner)
    return bool(uid) and any(ref.get("uid") == uid for ref in _refs(claim))


def has_stale_owner_ref(claim: JSON, obj: JSON, kind: tuple[str, str]) -> bool:
    for ref in _refs(claim):
        if _matches(ref, obj, kind):
            return ref.get("uid") != _uid(obj)
    return False


def stale_for_pod(claim: JSON, pod: JSON) -> bool:
    """The claim still belongs to an earlier Pod of this name (``PodClaimIsStale``)."""
    return has_stale_owner_ref(claim, pod, _POD)


def has_unexpected_controller(claim: JSON, sts: JSON, pod: JSON) -> bool:
    """Another controller manages the claim, or a reference to our set or Pod carries a wrong uid."""
    if retention_policy(sts) == (RETAIN, RETAIN):
        return False  # nothing of ours to enforce: others may manage the claim
    for ref in _refs(claim):
        if _matches(ref, sts, _SET):
            if ref.get("uid") != _uid(sts):
                return True
            continue
        if _matches(ref, pod, _POD):
            if ref.get("uid") != _uid(pod):
                return True
            continue
        if ref.get("controller"):
            return True
    return False


def _has_non_controller_owner(claim: JSON, sts: JSON, pod: JSON) -> bool:
    uids = {_uid(sts), _uid(pod)} - {""}
    return any(ref.get("uid") in uids and not ref.get("controller") for ref in _refs(claim))


def owner_refs_up_to_date(claim: JSON, sts: JSON, pod: JSON) -> bool:
    """``isClaimOwnerUpToDate``: the claim's references already say what the policy wants."""
    if has_stale_owner_ref(claim, sts, _SET) or has_stale_owner_ref(claim, pod, _POD):
        return True  # an earlier incarnation manages it: hands off
    if has_unexpected_controller(claim, sts, pod):
        return not (has_owner_ref(claim, sts) or has_owner_ref(claim, pod))
    if _has_non_controller_owner(claim, sts, pod):
        return False
    want_set, want_pod = _wanted(sts, pod)
    return has_owner_ref(claim, sts) == want_set and has_owner_ref(claim, pod) == want_pod


def _wanted(sts: JSON, pod: JSON) -> tuple[bool, bool]:
    """Whether the policy wants a reference to the set and to the Pod."""
    when_deleted, when_scaled = retention_policy(sts)
    if when_deleted not in (RETAIN, DELETE) or when_scaled not in (RETAIN, DELETE):
        log.error("unknown persistentVolumeClaimRetentionPolicy %s/%s: treating as Retain", when_deleted,
                  when_scaled)
        return False, False
    scaled_down = not in_ordinal_range(pod, sts)
    want_pod = when_scaled == DELETE and scaled_down
    want_set = when_deleted == DELETE and not (when_scaled == DELETE and scaled_down)
    return want_set, want_pod


def update_owner_refs(claim: JSON, sts: JSON, pod: JSON) -> None:
    """``updateClaimOwnerRefForSetAndPod``: rewrite the claim's references to ours as the policy wants (in
    place: pass a copy)."""
    unexpected = has_unexpected_controller(claim, sts, pod)
    refs = [r for r in _refs(claim) if not (_matches(r, sts, _SET) or _matches(r, pod, _POD))]
    if not unexpected:
        want_set, want_pod = _wanted(sts, pod)
        if want_set:
            refs.append(_controller_ref(sts, _SET))
        if want_pod and _uid(pod):
            refs.append(_controller_ref(pod, _POD))
    claim["metadata"]["ownerReferences"] = refs
    if not refs:
        claim["metadata"].pop("ownerReferences")


def _controller_ref(owner: JSON, kind: tuple[str, str]) -> JSON:
    return {"apiVersion": kind[0], "kind": kind[1], "name": owner["metadata"]["name"], "uid": _uid(owner),
            "controller": True, "blockOwnerDeletion": True}
