"""A StatefulSet's revisions: which ControllerRevision is current, which is the update, and which can go.

Each revision stores what kube stores, a strategic merge patch that puts the Pod template back
(``{"spec": {"template": {..., "$patch": "replace"}}}``), so ``kubectl rollout history`` and ``rollout undo``
read it as they would on a real cluster. The update revision is the one equal to the set's template (created,
or renumbered when an older one matches again, which is a rollback); the current revision is the one named by
``status.currentRevision``, else the update revision. History beyond ``revisionHistoryLimit`` that no Pod and
neither revision uses is deleted, oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable

from nanokube.api.objects import deep_copy
from nanokube.client.interface import JSON

from .. import history as shared
from ..history import History, find_equal_revisions, next_revision, surplus
from .identity import API_VERSION, KIND, revision_of, spec

SET_KIND = (API_VERSION, KIND)


def template_patch(sts: JSON) -> JSON:
    """What the set's revisions store: the patch that puts its current template back."""
    return shared.template_patch(spec(sts).get("template") or {})


def apply_revision(sts: JSON, revision: JSON) -> JSON:
    """The set as it was at ``revision``: its template restored (``ApplyRevision``)."""
    restored = deep_copy(sts)
    restored.setdefault("spec", {})["template"] = shared.restored_template(revision)
    return restored


def set_revision(sts: JSON, number: int, collision_count: int) -> JSON:
    """The revision the set's current template makes (``newRevision``): labelled as the template, annotated as
    the set."""
    data = template_patch(sts)
    hash_ = shared.hash_revision(data, collision_count)
    labels = ((spec(sts).get("template") or {}).get("metadata") or {}).get("labels") or {}
    name = shared.revision_name(sts["metadata"]["name"], hash_)
    return shared.new_revision(sts, SET_KIND, name, {**labels, shared.HASH_LABEL: hash_}, data, number)


async def resolve(history: History, sts: JSON, revisions: list[JSON]) -> tuple[JSON, JSON, int]:
    """(current revision, update revision, collision count) for the set, given its revisions sorted by number;
    may create the update revision or renumber an old one (``getStatefulSetRevisions``)."""
    collision_count = int((sts.get("status") or {}).get("collisionCount") or 0)
    wanted = set_revision(sts, next_revision(revisions), collision_count)
    equal = find_equal_revisions(revisions, wanted)
    if equal and equal[-1] is revisions[-1]:
        update = revisions[-1]  # the template has not changed since the newest revision
    elif equal:
        update = await history.update_number(equal[-1], int(wanted["revision"]))  # back to an older template
    else:
        update, collision_count = await history.create(sts, wanted, collision_count)
    current_name = (sts.get("status") or {}).get("currentRevision")
    current = next((r for r in revisions if r["metadata"]["name"] == current_name), None)
    return (current or update), update, collision_count


async def truncate(history: History, sts: JSON, pods: Iterable[JSON], revisions: list[JSON],
                   current: JSON | None, update: JSON | None) -> None:
    """Delete the oldest revisions beyond ``revisionHistoryLimit`` that nothing uses (``truncateHistory``)."""
    live = {revision_of(p) for p in pods}
    live |= {r["metadata"]["name"] for r in (current, update) if r is not None}
    limit = spec(sts).get("revisionHistoryLimit")
    for revision in surplus(revisions, live, 10 if limit is None else int(limit)):
        await history.delete(revision)
