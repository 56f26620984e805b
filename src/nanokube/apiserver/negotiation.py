"""Content negotiation: what a client accepts, and how to read the body it sent.

kubectl asks for Tables (``application/json;as=Table;v=v1;g=meta.k8s.io``) when printing, aggregated discovery
(``as=APIGroupDiscoveryList``) on ``/api`` and ``/apis``, and lists protobuf before JSON on typed reads; the
server answers JSON whenever JSON is acceptable. Bodies arrive as JSON (the Python client sends no
Content-Type at all), YAML (``application/apply-patch+yaml``) or Kubernetes protobuf (kubectl's generators).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from nanokube.api import protobuf
from nanokube.api.errors import BadRequest, NotAcceptable, UnsupportedMediaType

JSON_TYPE = "application/json"
PROTOBUF_TYPE = "application/vnd.kubernetes.protobuf"
TABLE_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


@dataclass(frozen=True)
class MediaRange:
    type: str  # "application/json"
    params: dict[str, str]


def parse_accept(header: str | None) -> list[MediaRange]:
    if not header:
        return [MediaRange("*/*", {})]
    ranges = []
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        if not fields[0]:
            continue
        params = {}
        for f in fields[1:]:
            key, _, value = f.partition("=")
            params[key.strip()] = value.strip()
        ranges.append(MediaRange(fields[0].lower(), params))
    return ranges


@dataclass(frozen=True)
class Output:
    """What to send: plain JSON, a Table, or aggregated discovery."""

    table: bool = False
    aggregated_discovery: bool = False


def choose_output(header: str | None, *, allow_table: bool = True) -> Output:
    for media in parse_accept(header):
        as_ = media.params.get("as")
        if media.type == "application/json" and as_ == "Table" and media.params.get("g") == "meta.k8s.io":
            if allow_table and media.params.get("v") in ("v1", "v1beta1"):
                return Output(table=True)
            continue
        if media.type == "application/json" and as_ == "APIGroupDiscoveryList":
            if media.params.get("g") == "apidiscovery.k8s.io" and media.params.get("v") == "v2":
                return Output(aggregated_discovery=True)
            continue
        if media.type == "application/json" and as_:
            continue  # PartialObjectMetadata and friends: not offered, try the next range
        if media.type in ("application/json", "application/*", "*/*", "application/yaml"):
            return Output()
        if media.type == PROTOBUF_TYPE:
            continue
    raise NotAcceptable("only the following media types are accepted: application/json, "
                        "application/json;as=Table;v=v1;g=meta.k8s.io")


def body_media_type(content_type: str | None) -> str:
    if not content_type:
        return JSON_TYPE  # the Python client sends no Content-Type on POST/PUT/DELETE
    return content_type.split(";")[0].strip().lower()


def decode_body(raw: bytes, content_type: str | None) -> Any:
    """Parse a create/update body into a dict. Raises BadRequest or UnsupportedMediaType."""
    media = body_media_type(content_type)
    if media in (JSON_TYPE, "*/*", "text/plain"):
        return _json(raw)
    if media in ("application/yaml", "application/apply-patch+yaml"):
        return _yaml(raw)
    if media == PROTOBUF_TYPE:
        try:
            return protobuf.decode(raw)
        except ValueError as err:
            raise BadRequest(f"the body of the request could not be decoded as protobuf: {err}") from err
    raise UnsupportedMediaType.accepted([JSON_TYPE, "application/yaml", PROTOBUF_TYPE])


def _json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise BadRequest(f"error decoding the body of the request as JSON: {err}") from err


def _yaml(raw: bytes) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise BadRequest(f"error decoding YAML: {err}") from err


def decode_patch_body(raw: bytes, media: str) -> Any:
    if media == "application/apply-patch+yaml":
        return _yaml(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise BadRequest(f"error decoding patch: {err}") from err
