"""Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``) decoded into JSON-shaped dicts.

client-go's typed clients send built-in kinds as protobuf and never fall back to JSON, so ``kubectl create
configmap|secret|deployment|...``, ``kubectl auth can-i``/``whoami`` and ``kubectl create token`` only work if
the server reads this format. The API server calls ``decode`` on such a body and continues exactly as if the
client had sent the JSON form of the same object.

Layout: ``wire`` reads the raw format, ``table`` loads the generated field table (``fields.json.gz``, made by
``tools/gen_proto_table.py`` from k8s.io/api and k8s.io/apimachinery), ``convert`` handles the apimachinery
types with a special JSON form, ``decoder`` walks messages. Pure functions, no I/O beyond reading the
packaged table once.
"""

from __future__ import annotations

from typing import Any

from nanokube.api.errors import BadRequest
from nanokube.api.protobuf.decoder import MAGIC, decode_envelope
from nanokube.api.protobuf.decoder import decode_message as _decode_message
from nanokube.api.protobuf.table import definition_name, message_name
from nanokube.api.protobuf.wire import WireError

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"

__all__ = [
    "MAGIC",
    "MEDIA_TYPE",
    "decode",
    "decode_message",
    "definition_name",
    "is_protobuf",
    "message_name",
]


def is_protobuf(body: bytes) -> bool:
    """True when ``body`` starts with the Kubernetes protobuf magic ``k8s\\0``."""
    return body.startswith(MAGIC)


def decode(body: bytes, *, api_version: str | None = None, kind: str | None = None) -> dict[str, Any]:
    """Decode a protobuf request body into the object's JSON form, with ``apiVersion`` and ``kind`` set.

    ``api_version``/``kind`` fill in an envelope whose TypeMeta is empty (the route knows the expected kind).
    Raises ``BadRequest`` (400) for a body that is not a well-formed Kubernetes protobuf object or names a kind
    no built-in group has.
    """
    try:
        return decode_envelope(body, api_version, kind)
    except WireError as exc:
        raise BadRequest(str(exc)) from exc
    except RecursionError as exc:
        raise BadRequest("protobuf object nested too deeply") from exc


def decode_message(data: bytes, message: str) -> Any:
    """Decode a bare message (no envelope) of full proto name ``message``, e.g. ``k8s.io.api.core.v1.PodSpec``."""
    try:
        return _decode_message(data, message)
    except WireError as exc:
        raise BadRequest(str(exc)) from exc
