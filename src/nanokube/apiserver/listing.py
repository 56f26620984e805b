"""What a list asks for and may ask for: options, selectors, resourceVersion and continue-token checks.

``ObjectStorage.list_objects`` reads the store; the rules around that read need no store and live here:
``ListOptions`` and ``ListPage`` (the request and one page of the answer), ``matcher`` (label and field
selectors compiled once per request, shared with watches), ``check_revision`` (kube's answers to a
``resourceVersion`` the server cannot serve: too large, or an exact read of the past, which is compacted here
since only the newest state is kept) and ``continue_from`` (where a continue token resumes, unless compaction
has made it inconsistent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nanokube.api.errors import BadRequest, Expired, Timeout
from nanokube.api.fields import FieldSelector, FieldSpec, custom_resource_field_spec, field_spec
from nanokube.api.labels import Selector
from nanokube.api.registry import Resource

from .continuetoken import decode_continue

JSON = dict[str, Any]
_CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list.")


@dataclass
class ListOptions:
    label_selector: Selector | None = None
    field_selector: FieldSelector | None = None
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""


@dataclass
class ListPage:
    items: list[JSON]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


def field_spec_for(resource: Resource) -> FieldSpec:
    """The field-selector labels a resource supports: kube's per-kind ones, or a CRD's selectable fields."""
    if resource.custom:
        return custom_resource_field_spec(resource.namespaced, resource.selectable_fields)
    return field_spec(resource.group, resource.kind)


def matcher(resource: Resource, labels: Selector | None, fields: FieldSelector | None) -> Callable[[JSON], bool]:
    """A predicate for list filtering and watch events, compiled once per request."""
    field_match = field_spec_for(resource).matcher(fields) if fields is not None else None

    def matches(obj: JSON) -> bool:
        if labels is not None and not labels.matches(obj["metadata"].get("labels") or {}):
            return False
        return field_match is None or field_match(obj)

    return matches


def check_revision(opts: ListOptions, current: int) -> None:
    """Refuse a ``resourceVersion`` the store at revision ``current`` cannot list (none, "0" and continued lists
    pass): not a number, newer than ``current``, or an ``Exact`` match of an older revision."""
    if not opts.resource_version or opts.resource_version == "0" or opts.continue_token:
        return
    try:
        wanted = int(opts.resource_version)
    except ValueError:
        raise BadRequest(f"invalid resource version: {opts.resource_version}") from None
    if wanted > current:
        raise Timeout(f"Too large resource version: {wanted}, current: {current}",
                      details={"causes": [{"reason": "ResourceVersionTooLarge",
                                           "message": "Too large resource version"}],
                               "retryAfterSeconds": 1})
    if opts.resource_version_match == "Exact" and wanted != current:
        raise Expired.too_old(wanted, current)


def continue_from(opts: ListOptions, compacted_revision: int) -> tuple[int, str]:
    """(revision of the first page, key to resume after) of a continued list, (0, "") for a first page;
    ``Expired`` when the first page's revision has been compacted away."""
    if not opts.continue_token:
        return 0, ""
    token_rev, start_after = decode_continue(opts.continue_token)
    if token_rev <= compacted_revision:
        raise Expired(_CONTINUE_TOO_OLD)
    return token_rev, start_after
