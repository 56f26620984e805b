"""What a request asks for beyond its verb and path, and the response helpers every handler shares.

The REST handlers (``handlers``, ``subresources``) read the same query parameters and bodies: list and watch
options, ``DeleteOptions`` from a body or the query, ``dryRun``, ``fieldValidation``, ``fieldManager``. Each is
parsed here into the options ``ObjectStorage`` takes, refusing bad values with kube's wording, so the handlers
only run verbs. Nothing here touches storage.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from nanokube.api import managedfields
from nanokube.api.errors import BadRequest, FieldError, Invalid
from nanokube.api.fields import parse_field_selector
from nanokube.api.labels import parse_selector
from nanokube.api.registry import Resource

from .negotiation import JSON_TYPE, decode_body
from .storage import DeleteOptions, ListOptions, field_spec_for

JSON = dict[str, Any]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                  content_type: str = JSON_TYPE) -> web.Response:
    """A JSON body (or ``content_type``, e.g. a Table) with ``status`` and extra ``headers``."""
    return web.Response(body=orjson.dumps(body), status=status, headers={"Content-Type": content_type,
                                                                           **(headers or {})})


def field_manager(request: web.Request) -> str:
    """The manager a write is recorded under: ``fieldManager``, else derived from the User-Agent as kube does."""
    return request.query.get("fieldManager") or managedfields.default_manager(request.headers.get("User-Agent", ""))


def flag(value: str | None) -> bool:
    """A boolean query parameter: true, 1 or yes (any case)."""
    return value is not None and value.lower() in ("true", "1", "yes")


def list_options(request: web.Request, resource: Resource) -> ListOptions:
    """``labelSelector``, ``fieldSelector`` (checked against the kind's selectable fields), ``limit``,
    ``continue``, ``resourceVersion`` and ``resourceVersionMatch`` of a list or watch."""
    q = request.query
    opts = ListOptions()
    if q.get("labelSelector"):
        try:
            opts.label_selector = parse_selector(q["labelSelector"])
        except ValueError as err:
            raise BadRequest(str(err)) from err
    if q.get("fieldSelector"):
        try:
            fs = field_spec_for(resource).check(parse_field_selector(q["fieldSelector"]))
        except ValueError as err:
            raise BadRequest(str(err)) from err
        opts.field_selector = fs
    if q.get("limit"):
        try:
            opts.limit = max(int(q["limit"]), 0)
        except ValueError:
            raise BadRequest(f"invalid limit: {q['limit']}") from None
    opts.continue_token = q.get("continue", "")
    opts.resource_version = q.get("resourceVersion", "")
    opts.resource_version_match = q.get("resourceVersionMatch", "")
    if opts.resource_version_match and opts.resource_version_match not in ("Exact", "NotOlderThan"):
        raise Invalid("ListOptions", "meta.k8s.io", "", [])
    return opts


def field_validation(request: web.Request) -> str:
    """``fieldValidation``: Strict, Warn (the default) or Ignore."""
    value = request.query.get("fieldValidation", "") or "Warn"
    if value not in ("Strict", "Warn", "Ignore"):
        raise BadRequest(f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got "{value}"')
    return value


def dry_run(request: web.Request) -> bool:
    """Whether ``dryRun`` asks for a dry run; only ``All`` is a valid value."""
    values = request.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise BadRequest(f'Invalid dry run value: "{value}", only "All" is supported')
    return bool(values)


def warning_headers(warnings: list[str]) -> dict[str, str]:
    """The ``Warning`` header (code 299) carrying ``warnings``, or none."""
    if not warnings:
        return {}
    escaped = [w.replace("\\", "\\\\").replace('"', '\\"') for w in warnings]
    return {"Warning": ", ".join(f'299 - "{w}"' for w in escaped)}


async def delete_options(request: web.Request) -> DeleteOptions:
    """DeleteOptions from the body (``DeleteOptions`` object) or the query string, the body winning."""
    q = request.query
    raw = await request.read() if request.can_read_body else b""
    body: JSON = {}
    if raw.strip():
        decoded = decode_body(raw, request.headers.get("Content-Type"))
        if decoded is not None:
            if not isinstance(decoded, dict):
                raise BadRequest("DeleteOptions must be an object")
            body = decoded
    opts = DeleteOptions()
    grace = body.get("gracePeriodSeconds", q.get("gracePeriodSeconds"))
    if grace is not None:
        try:
            opts.grace_period_seconds = int(grace)
        except (TypeError, ValueError):
            raise BadRequest(f"invalid gracePeriodSeconds: {grace}") from None
    opts.propagation_policy = body.get("propagationPolicy") or q.get("propagationPolicy")
    if opts.propagation_policy and opts.propagation_policy not in ("Background", "Foreground", "Orphan"):
        raise delete_options_invalid(opts.propagation_policy)
    orphan = body.get("orphanDependents", q.get("orphanDependents"))
    if orphan is not None:
        opts.orphan_dependents = orphan if isinstance(orphan, bool) else flag(str(orphan))
    pre = body.get("preconditions") or {}
    opts.precondition_uid = pre.get("uid")
    opts.precondition_resource_version = pre.get("resourceVersion")
    dry = body.get("dryRun") or q.getall("dryRun", [])
    opts.dry_run = bool(dry)
    return opts


def list_options_invalid(field: str, detail: str) -> Invalid:
    """kube's 422 for a ListOptions field that may not be set on this request."""
    return Invalid("ListOptions", "meta.k8s.io", "", [FieldError.forbidden(field, detail)])


def delete_options_invalid(policy: str) -> Invalid:
    """kube's 422 for an unknown ``propagationPolicy``."""
    return Invalid("DeleteOptions", "meta.k8s.io", "", [FieldError.not_supported(
        "propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"])])
