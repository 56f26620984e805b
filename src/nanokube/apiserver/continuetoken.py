"""List continue tokens: opaque to clients, ``base64({"v":"meta.k8s.io/v1","rv":N,"start":KEY})`` inside,
the same shape kube-apiserver uses. ``rv`` lets the server answer 410 once that revision is compacted."""

from __future__ import annotations

import base64
import binascii

import orjson

from nanokube.api.errors import BadRequest


def encode_continue(revision: int, last_key: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": last_key + "\x00"})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    """(revision, key to continue strictly after). Raises BadRequest for a token this server did not make."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        revision = int(data["rv"])
        start = str(data["start"])
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise BadRequest("continue key is not valid: incorrect encoded start resourceVersion (version "
                         "meta.k8s.io/v1)") from None
    return revision, start.removesuffix("\x00")
