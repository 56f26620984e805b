"""Errors raised by the patch algorithms, one class per HTTP answer the API server gives.

The algorithms stay free of HTTP: each class carries the ``code`` Kubernetes answers with, so the API server can
map them without knowing which algorithm failed. Messages follow the Go libraries the real server uses
(evanphx/json-patch v4, apimachinery ``strategicpatch``/``mergepatch``), because clients print them verbatim.
"""

from __future__ import annotations

from typing import Any

UNSUPPORTED_SMP = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)


class PatchError(ValueError):
    """Base of the patch errors. ``code`` is the HTTP status the API server answers with."""

    code = 500


class PatchDecodeError(PatchError):
    """The patch document itself is malformed (400 BadRequest)."""

    code = 400


class PatchUnsupportedError(PatchDecodeError):
    """Strategic merge patch on a kind without a schema, e.g. a custom resource (415 UnsupportedMediaType)."""

    code = 415

    def __init__(self, message: str = UNSUPPORTED_SMP) -> None:
        super().__init__(message)


class PatchApplyError(PatchError):
    """A well-formed patch that does not apply to this object, e.g. a failed JSON patch ``test`` (422)."""

    code = 422


class PatchMergeError(PatchApplyError):
    """A strategic merge the Go server refuses with a plain error (500, reason Unknown): a list item without
    its merge key, mixed element types, an unknown ``$patch`` directive."""

    code = 500


def go_repr(value: Any) -> str:
    """``fmt.Sprintf("%v", value)`` for decoded JSON, as Go error messages print maps and lists."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_repr(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_repr(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
