"""Query parameters and DeleteOptions bodies parsed into storage options, with kube's refusals."""

from __future__ import annotations

import asyncio
import json
from unittest import mock

import pytest
from aiohttp import StreamReader, web
from aiohttp.test_utils import make_mocked_request

from nanokube.api.errors import BadRequest, Invalid
from nanokube.api.registry import Registry, Resource
from nanokube.apiserver import requestparams as params


def _pods() -> Resource:
    resource = Registry().get("", "v1", "pods")
    assert resource is not None
    return resource


def _get(query: str, **headers: str) -> web.Request:
    return make_mocked_request("GET", f"/api/v1/pods?{query}", headers=headers)


def _delete(query: str, body: object = None) -> web.Request:
    raw = json.dumps(body).encode() if body is not None else b""
    payload = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    if raw:
        payload.feed_data(raw)
    payload.feed_eof()
    request = make_mocked_request("DELETE", f"/api/v1/namespaces/d/pods/p?{query}",
                                  headers={"Content-Type": "application/json", "Content-Length": str(len(raw))},
                                  payload=payload)
    return request


def test_flags_and_dry_run() -> None:
    assert params.flag("True") and params.flag("1") and params.flag("yes")
    assert not params.flag("false") and not params.flag(None) and not params.flag("")
    assert params.dry_run(_get("dryRun=All")) and not params.dry_run(_get(""))
    with pytest.raises(BadRequest, match='Invalid dry run value: "Some"'):
        params.dry_run(_get("dryRun=Some"))


def test_field_validation_defaults_to_warn() -> None:
    assert params.field_validation(_get("")) == "Warn"
    assert params.field_validation(_get("fieldValidation=Strict")) == "Strict"
    with pytest.raises(BadRequest, match="fieldValidation must be one of"):
        params.field_validation(_get("fieldValidation=Loose"))


def test_field_manager_falls_back_to_the_user_agent() -> None:
    assert params.field_manager(_get("fieldManager=me")) == "me"
    assert params.field_manager(_get("", **{"User-Agent": "kubectl/v1.37.0 (linux/amd64)"})) == "kubectl"


def test_list_options() -> None:
    opts = params.list_options(_get("labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dn1&limit=5"
                                     "&continue=tok&resourceVersion=3&resourceVersionMatch=NotOlderThan"), _pods())
    assert opts.label_selector is not None and opts.label_selector.matches({"app": "web"})
    assert opts.field_selector is not None and opts.limit == 5 and opts.continue_token == "tok"
    assert (opts.resource_version, opts.resource_version_match) == ("3", "NotOlderThan")
    assert params.list_options(_get("limit=-4"), _pods()).limit == 0
    for query in ("limit=x", "fieldSelector=spec.unknown%3D1", "labelSelector=a%20b%20c"):
        with pytest.raises(BadRequest):
            params.list_options(_get(query), _pods())
    with pytest.raises(Invalid):
        params.list_options(_get("resourceVersionMatch=Newest"), _pods())


async def test_delete_options_from_the_query_and_the_body() -> None:
    opts = await params.delete_options(_delete("gracePeriodSeconds=5&propagationPolicy=Orphan&dryRun=All"))
    assert (opts.grace_period_seconds, opts.propagation_policy, opts.dry_run) == (5, "Orphan", True)
    body = {"kind": "DeleteOptions", "gracePeriodSeconds": 0, "orphanDependents": False,
            "preconditions": {"uid": "u", "resourceVersion": "9"}}
    opts = await params.delete_options(_delete("gracePeriodSeconds=30", body))
    assert opts.grace_period_seconds == 0 and opts.orphan_dependents is False
    assert (opts.precondition_uid, opts.precondition_resource_version) == ("u", "9")
    with pytest.raises(Invalid, match="Sideways"):
        await params.delete_options(_delete("propagationPolicy=Sideways"))
    with pytest.raises(BadRequest, match="invalid gracePeriodSeconds"):
        await params.delete_options(_delete("gracePeriodSeconds=soon"))
    with pytest.raises(BadRequest, match="DeleteOptions must be an object"):
        await params.delete_options(_delete("", [1]))


def test_warning_headers_escape_quotes() -> None:
    assert params.warning_headers([]) == {}
    assert params.warning_headers(['a "b"', "c"]) == {"Warning": '299 - "a \\"b\\"", 299 - "c"'}
