"""List rules without a store: resourceVersion checks, continue tokens, selector matching."""

from __future__ import annotations

import pytest

from nanokube.api.errors import BadRequest, Expired, Timeout
from nanokube.api.fields import parse_field_selector
from nanokube.api.labels import parse_selector
from nanokube.api.registry import Registry
from nanokube.apiserver import listing
from nanokube.apiserver.continuetoken import encode_continue
from nanokube.apiserver.listing import ListOptions


def test_resource_versions_a_list_cannot_serve() -> None:
    for ok in (ListOptions(), ListOptions(resource_version="0"), ListOptions(resource_version="5"),
               ListOptions(resource_version="99", continue_token="t"),
               ListOptions(resource_version="10", resource_version_match="Exact")):
        listing.check_revision(ok, 10)
    with pytest.raises(BadRequest, match="invalid resource version: x"):
        listing.check_revision(ListOptions(resource_version="x"), 10)
    with pytest.raises(Timeout, match="Too large resource version: 11, current: 10"):
        listing.check_revision(ListOptions(resource_version="11"), 10)
    with pytest.raises(Expired):
        listing.check_revision(ListOptions(resource_version="9", resource_version_match="Exact"), 10)


def test_continue_tokens_resume_unless_compacted() -> None:
    assert listing.continue_from(ListOptions(), 100) == (0, "")
    token = encode_continue(7, "/core/configmaps/default/b")
    assert listing.continue_from(ListOptions(continue_token=token), 6) == (7, "/core/configmaps/default/b")
    with pytest.raises(Expired, match="continue parameter is too old"):
        listing.continue_from(ListOptions(continue_token=token), 7)


def test_matcher_ands_labels_and_fields() -> None:
    pods = Registry().get("", "v1", "pods")
    assert pods is not None
    pod = {"metadata": {"name": "p", "namespace": "d", "labels": {"app": "web"}}, "spec": {"nodeName": "n1"}}
    assert listing.matcher(pods, None, None)(pod)
    assert listing.matcher(pods, parse_selector("app=web"), parse_field_selector("spec.nodeName=n1"))(pod)
    assert not listing.matcher(pods, parse_selector("app=db"), None)(pod)
    assert not listing.matcher(pods, parse_selector("app=web"), parse_field_selector("spec.nodeName=n2"))(pod)
