"""Pure helpers over Deployments and their ReplicaSets (kube's ``pkg/controller/deployment/util``).

The pod-template hash and ``pod-template-hash`` label, the revision and replica annotations, maxSurge and
maxUnavailable resolved against the replica count (percentages rounded as kube rounds them), replica sums,
the orderings kube sorts ReplicaSets by, and which ReplicaSet is the new one. Nothing here does I/O, so the
rollout arithmetic is tested without a cluster.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from nanokube.api.names import safe_encode_string
from nanokube.api.objects import deep_copy, json_equal
from nanokube.client.interface import JSON
from nanokube.util.timeutil import parse_rfc3339

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
SKIPPED_ANNOTATIONS = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
                                 ROLLBACK_TO})
MAX_REVISION_HISTORY_CHARS = 2000

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


# -- template hash ----------------------------------------------------------------------------------------
def _fnv32a(data: bytes, value: int = _FNV_OFFSET) -> int:
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def compute_hash(template: JSON, collision_count: int | None) -> str:
    """FNV-32a over the template (canonical JSON) and the collision count, encoded like kube's
    ``rand.SafeEncodeString``: stable across restarts, changed by any change to the template."""
    value = _fnv32a(json.dumps(template, sort_keys=True, separators=(",", ":")).encode())
    if collision_count is not None:
        value = _fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4), value)
    return safe_encode_string(str(value))


def _semantic(value: Any, key: str = "") -> Any:
    """A JSON value as ``apiequality.Semantic.DeepEqual`` sees it: empty lists and maps equal missing ones."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = _semantic(v, k)
            if v is None or v == [] or (v == {} and k in ("labels", "annotations", "nodeSelector")):
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def _comparable_template(template: JSON | None) -> Any:
    t = deep_copy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return _semantic(t)


def equal_ignore_hash(a: JSON | None, b: JSON | None) -> bool:
    """Two pod templates are equal once the ``pod-template-hash`` label is taken out of both."""
    return json_equal(_comparable_template(a), _comparable_template(b))


class TemplateCache:
    """Comparable forms of objects' pod templates, by (uid, resourceVersion): a Deployment sync compares its
    template with every ReplicaSet's, and those rarely change between syncs."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._items: dict[tuple[str, str], Any] = {}

    def of(self, obj: JSON) -> Any:
        meta = obj["metadata"]
        key = (str(meta.get("uid", "")), str(meta.get("resourceVersion", "")))
        found = self._items.get(key)
        if found is None or not key[1]:
            found = _comparable_template((obj.get("spec") or {}).get("template"))
            if len(self._items) >= self.size:
                self._items.pop(next(iter(self._items)))
            self._items[key] = found
        return found


# -- annotations ------------------------------------------------------------------------------------------
def annotations_of(obj: JSON) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def revision(obj: JSON | None) -> int:
    """``deployment.kubernetes.io/revision`` as a number; 0 when missing, -1 when not a number."""
    if obj is None:
        return 0
    text = annotations_of(obj).get(REVISION)
    if text is None:
        return 0
    try:
        return int(text)
    except ValueError:
        return -1


def max_revision(rses: list[JSON]) -> int:
    return max((revision(rs) for rs in rses), default=0)


def set_annotation(obj: JSON, key: str, value: str) -> bool:
    current = obj["metadata"].setdefault("annotations", {})
    if current.get(key) == value:
        return False
    current[key] = value
    return True


def copy_deployment_annotations(d: JSON, rs: JSON) -> bool:
    """Everything the user annotated the Deployment with (change-cause...), except the controller's own."""
    changed = False
    for key, value in annotations_of(d).items():
        if key not in SKIPPED_ANNOTATIONS:
            changed = set_annotation(rs, key, value) or changed
    return changed


def set_replicas_annotations(rs: JSON, desired: int, max_replicas: int) -> bool:
    changed = set_annotation(rs, DESIRED_REPLICAS, str(desired))
    return set_annotation(rs, MAX_REPLICAS, str(max_replicas)) or changed


def replicas_annotations_need_update(rs: JSON, desired: int, max_replicas: int) -> bool:
    current = annotations_of(rs)
    return current.get(DESIRED_REPLICAS) != str(desired) or current.get(MAX_REPLICAS) != str(max_replicas)


def int_annotation(rs: JSON, key: str) -> int | None:
    try:
        return int(annotations_of(rs)[key])
    except (KeyError, ValueError):
        return None


def set_new_rs_annotations(d: JSON, rs: JSON, new_revision: int, exists: bool) -> bool:
    """``SetNewReplicaSetAnnotations``: copy the Deployment's annotations, raise the revision (remembering the
    one it had in ``revision-history``, as a rollback does), and on a new ReplicaSet the replica annotations."""
    changed = copy_deployment_annotations(d, rs)
    old_text = annotations_of(rs).get(REVISION)
    try:
        old = int(old_text) if old_text is not None else 0
    except ValueError:
        return changed
    if old < new_revision:
        set_annotation(rs, REVISION, str(new_revision))
        changed = True
        if old_text is not None:
            _append_history(rs, old_text)
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


def _append_history(rs: JSON, old: str) -> None:
    history = annotations_of(rs).get(REVISION_HISTORY, "")
    if not history:
        set_annotation(rs, REVISION_HISTORY, old)
        return
    parts = history.split(",")
    total = len(history) + len(old) + 1
    while total > MAX_REVISION_HISTORY_CHARS and parts:
        total -= len(parts.pop(0)) + 1
    if total <= MAX_REVISION_HISTORY_CHARS:
        set_annotation(rs, REVISION_HISTORY, ",".join([*parts, old]))


# -- fenceposts -------------------------------------------------------------------------------------------
def replicas(obj: JSON | None) -> int:
    return int(((obj or {}).get("spec") or {}).get("replicas", 1 if obj is not None else 0) or 0)


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: an int as is, ``"25%"`` of total rounded up or down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        return int(text)
    percent = int(text[:-1])
    return -(-percent * total // 100) if round_up else percent * total // 100


def is_rolling_update(d: JSON) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def resolve_fenceposts(d: JSON) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) for the Deployment's replica count; never both zero."""
    rolling = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    desired = replicas(d)
    surge = scaled_value(rolling.get("maxSurge", 0), desired, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", 0), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # rounding down made both zero: allow one, since a surge may be stopped by quota
    return surge, unavailable


def max_surge(d: JSON) -> int:
    return resolve_fenceposts(d)[0] if is_rolling_update(d) else 0


def max_unavailable(d: JSON) -> int:
    if not is_rolling_update(d) or replicas(d) == 0:
        return 0
    return min(resolve_fenceposts(d)[1], replicas(d))


# -- counting and ordering ---------------------------------------------------------------------------------
def _status(rs: JSON | None, key: str) -> int:
    return int(((rs or {}).get("status") or {}).get(key) or 0)


def replica_count(rses: list[JSON | None]) -> int:
    """Sum of ``spec.replicas``: what the ReplicaSets are asked to run."""
    return sum(replicas(rs) for rs in rses if rs is not None)


def actual_count(rses: list[JSON | None]) -> int:
    return sum(_status(rs, "replicas") for rs in rses if rs is not None)


def ready_count(rses: list[JSON | None]) -> int:
    return sum(_status(rs, "readyReplicas") for rs in rses if rs is not None)


def available_count(rses: list[JSON | None]) -> int:
    return sum(_status(rs, "availableReplicas") for rs in rses if rs is not None)


def terminating_count(rses: list[JSON | None]) -> int | None:
    """Sum of ``status.terminatingReplicas``; None when any ReplicaSet does not report it."""
    total = 0
    for rs in rses:
        if rs is None:
            continue
        value = (rs.get("status") or {}).get("terminatingReplicas")
        if value is None:
            return None
        total += int(value)
    return total


def active(rses: list[JSON | None]) -> list[JSON]:
    return [rs for rs in rses if rs is not None and replicas(rs) > 0]


def by_creation(rs: JSON) -> tuple[str, str]:
    return rs["metadata"].get("creationTimestamp", ""), rs["metadata"]["name"]


def by_size_older(rses: list[JSON]) -> list[JSON]:
    """Largest first; among equals the older first (who gives replicas back first when scaling down)."""
    return sorted(sorted(rses, key=by_creation), key=lambda rs: -replicas(rs))


def by_size_newer(rses: list[JSON]) -> list[JSON]:
    """Largest first; among equals the newer first (who gets replicas first when scaling up)."""
    return sorted(sorted(rses, key=by_creation, reverse=True), key=lambda rs: -replicas(rs))


def by_revision(rses: list[JSON]) -> list[JSON]:
    return sorted(sorted(rses, key=by_creation), key=revision)


def find_new(d: JSON, rses: list[JSON], cache: TemplateCache | None = None) -> JSON | None:
    """The oldest ReplicaSet whose template is the Deployment's (kube picks the oldest among equals)."""
    cache = cache or TemplateCache()
    template = cache.of(d)
    for rs in sorted(rses, key=by_creation):
        if json_equal(cache.of(rs), template):
            return rs
    return None


def find_old(d: JSON, rses: list[JSON], cache: TemplateCache | None = None) -> list[JSON]:
    new = find_new(d, rses, cache)
    return [rs for rs in rses if new is None or rs["metadata"]["uid"] != new["metadata"]["uid"]]


def find_active_or_latest(new: JSON | None, old: list[JSON]) -> JSON | None:
    """The one ReplicaSet with replicas, or the newest when none has any; None when several have."""
    if new is None and not old:
        return None
    running = active([*old, new])
    if len(running) == 1:
        return running[0]
    if not running:
        return new if new is not None else sorted(old, key=by_creation)[-1]
    return None


def is_saturated(d: JSON, rs: JSON | None) -> bool:
    if rs is None:
        return False
    desired = int_annotation(rs, DESIRED_REPLICAS)
    want = replicas(d)
    return replicas(rs) == want and desired == want and _status(rs, "availableReplicas") == want


def proportion(rs: JSON, d: JSON, to_add: int, added: int) -> int:
    """How many of ``to_add`` replicas (negative: to remove) this ReplicaSet takes, by its share of the
    Deployment's size before the scale (``max-replicas``)."""
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    allowed = to_add - added
    fraction = _fraction(rs, d)
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _fraction(rs: JSON, d: JSON) -> int:
    if replicas(d) == 0:
        return -replicas(rs)
    new_max = replicas(d) + max_surge(d)
    before = int_annotation(rs, MAX_REPLICAS) or 0
    if before == 0:
        before = _status(d, "replicas")
        if before == 0:
            return 0
    return math.floor(replicas(rs) * new_max / before + 0.5) - replicas(rs)


def older_than(at: str, seconds: float, now: datetime) -> bool:
    """``at`` (RFC 3339) plus ``seconds`` lies before ``now``."""
    return parse_rfc3339(at).timestamp() + seconds < now.timestamp()


def new_rs_new_replicas(d: JSON, all_rses: list[JSON], new_rs: JSON) -> int:
    """The size the new ReplicaSet may grow to now: up to maxSurge over the desired total (RollingUpdate),
    or straight to the desired count (Recreate)."""
    if not is_rolling_update(d):
        return replicas(d)
    rolling = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    max_total = replicas(d) + scaled_value(rolling.get("maxSurge", 0), replicas(d), True)
    current = replica_count(list(all_rses))
    if current >= max_total:
        return replicas(new_rs)
    return replicas(new_rs) + min(max_total - current, replicas(d) - replicas(new_rs))
