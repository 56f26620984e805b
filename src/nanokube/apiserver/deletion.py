"""What a delete does to an object: remove it now, mark it for deletion, or leave it as it is.

kube's generic registry deletes in two steps. A DELETE whose object has no finalizers left and no grace period
(after the strategy's say, e.g. a Pod's ``terminationGracePeriodSeconds``) removes it; otherwise the object stays
with a ``deletionTimestamp`` and ``deletionGracePeriodSeconds``, and the finalizers of the propagation policy
(``foregroundDeletion``, ``orphan``) are added for the garbage collector. A Namespace also turns Terminating and
waits for its ``spec.finalizers`` to be emptied (``PUT .../finalize``). Once marked, a later update that clears
the last finalizer removes the object (``ready_to_remove``), and no finalizer may be added any more
(``finalizers_added_while_deleting``).

The decisions are pure, so they are tested without a store: ``ObjectStorage.delete`` reads the live object,
asks ``plan`` and writes what it answers, retrying when another writer got in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nanokube.api.errors import Conflict, FieldError
from nanokube.api.objects import deep_copy
from nanokube.api.registry import Resource
from nanokube.util.timeutil import after, rfc3339

from .strategies import Strategy

JSON = dict[str, Any]
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


@dataclass
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None  # Background | Foreground | Orphan
    orphan_dependents: bool | None = None
    precondition_uid: str | None = None
    precondition_resource_version: str | None = None
    dry_run: bool = False


@dataclass
class Plan:
    """The outcome of a delete: ``remove`` the object now, write ``marked`` (the object marked for deletion), or
    neither (already marked, nothing new to say)."""
    remove: bool = False
    marked: JSON | None = None


def plan(resource: Resource, name: str, live: JSON, opts: DeleteOptions, strategy: Strategy) -> Plan:
    """What deleting ``live`` with ``opts`` does; raises ``Conflict`` when a precondition fails."""
    check_preconditions(resource, name, live, opts)
    meta = live["metadata"]
    desired = deep_copy(live)
    dmeta = desired["metadata"]
    finalizers = with_policy_finalizer(list(dmeta.get("finalizers") or []),
                                       propagation_policy(opts, strategy.default_propagation()))
    grace = strategy.graceful_delete_seconds(live, opts.grace_period_seconds)
    is_namespace = resource.group == "" and resource.plural == "namespaces"
    if is_namespace:
        desired.setdefault("status", {})["phase"] = "Terminating"
    # A namespace waits for its controller to empty spec.finalizers (PUT .../finalize), then goes.
    pending_spec = is_namespace and bool((desired.get("spec") or {}).get("finalizers"))
    if not finalizers and grace == 0 and not pending_spec:
        return Plan(remove=True)
    if meta.get("deletionTimestamp"):
        # Already being deleted: a shorter grace period may still shorten the wait (pods).
        old_grace = meta.get("deletionGracePeriodSeconds")
        if old_grace is not None and grace < old_grace and not finalizers:
            dmeta["deletionTimestamp"] = after(grace)
            dmeta["deletionGracePeriodSeconds"] = grace
        elif finalizers == list(meta.get("finalizers") or []):
            return Plan()
    else:
        dmeta["deletionTimestamp"] = after(grace) if grace else rfc3339()
        dmeta["deletionGracePeriodSeconds"] = grace
    if finalizers:
        dmeta["finalizers"] = finalizers
    return Plan(marked=desired)


def check_preconditions(resource: Resource, name: str, live: JSON, opts: DeleteOptions) -> None:
    """Refuse with ``Conflict`` when the caller's uid or resourceVersion precondition does not hold; worded as
    kube's ``rest.BeforeDelete``, which names the Kind rather than the resource."""
    meta = live["metadata"]
    details = {"name": name, **({"group": resource.group} if resource.group else {}), "kind": resource.kind}
    if opts.precondition_uid and opts.precondition_uid != meta.get("uid"):
        raise Conflict(
            f'Operation cannot be fulfilled on {resource.kind} "{name}": the UID in the precondition '
            f"({opts.precondition_uid}) does not match the UID in record ({meta.get('uid')}). The object "
            "might have been deleted and then recreated", details=details)
    wanted_rv = opts.precondition_resource_version
    if wanted_rv and wanted_rv != meta.get("resourceVersion"):
        raise Conflict(
            f'Operation cannot be fulfilled on {resource.kind} "{name}": the ResourceVersion in the '
            f"precondition ({wanted_rv}) does not match the ResourceVersion in record "
            f"({meta.get('resourceVersion')}). The object might have been modified", details=details)


def propagation_policy(opts: DeleteOptions, default: str) -> str:
    """The policy a delete uses: ``propagationPolicy``, else the deprecated ``orphanDependents``, else the
    kind's default."""
    if opts.propagation_policy:
        return opts.propagation_policy
    if opts.orphan_dependents is True:
        return "Orphan"
    if opts.orphan_dependents is False:
        return "Background"
    return default


def with_policy_finalizer(finalizers: list[str], policy: str) -> list[str]:
    """The finalizers after a delete with ``policy``: Foreground and Orphan add their own finalizer (and drop the
    other's) unless it is already there; Background changes nothing."""
    if policy == "Foreground" and FOREGROUND not in finalizers:
        return [f for f in finalizers if f != ORPHAN] + [FOREGROUND]
    if policy == "Orphan" and ORPHAN not in finalizers:
        return [f for f in finalizers if f != FOREGROUND] + [ORPHAN]
    return finalizers


def ready_to_remove(obj: JSON) -> bool:
    """Whether an object about to be written is marked for deletion with nothing left to wait for, so the
    write removes it instead: no finalizers, no Namespace ``spec.finalizers``, and not a graceful Pod (which
    waits for its node to confirm with a delete of grace 0)."""
    meta = obj["metadata"]
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if obj.get("kind") == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
        return False
    return not (obj.get("kind") == "Pod" and meta.get("deletionGracePeriodSeconds"))


def finalizers_added_while_deleting(desired: JSON, live: JSON) -> list[FieldError]:
    """The error for an update that adds finalizers to an object already being deleted (none otherwise)."""
    if not live["metadata"].get("deletionTimestamp"):
        return []
    old = set(live["metadata"].get("finalizers") or [])
    added = sorted(set(desired["metadata"].get("finalizers") or []) - old)
    if not added:
        return []
    listed = ", ".join(f'"{a}"' for a in added)
    return [FieldError.forbidden("metadata.finalizers", "no new finalizers can be added if the object is being "
                                 f"deleted, found new finalizers []string{{{listed}}}")]
