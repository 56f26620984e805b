"""Errors shaped like ``metav1.Status``.

Every failure that reaches a client is one of these. The class picks the HTTP code and ``reason``; the message
and ``details`` follow Kubernetes' own wording (apimachinery ``pkg/api/errors``), because kubectl prints them
verbatim (``Error from server (NotFound): pods "x" not found``) and clients branch on the reason.

Callers raise the specific subclass; the API server turns any ``ApiError`` into a Status body with ``to_status``.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Base of the tree: a Kubernetes Status failure with an HTTP code and a reason."""

    code = 500
    reason = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def qualified(resource: str, group: str) -> str:
    """``deployments.apps`` for a grouped resource, ``pods`` for the core group."""
    return f"{resource}.{group}" if group else resource


def _details(name: str | None, group: str, resource: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if resource:
        details["kind"] = resource
    details.update({k: v for k, v in extra.items() if v is not None})
    return details


class BadRequest(ApiError):
    code = 400
    reason = "BadRequest"


class Unauthorized(ApiError):
    code = 401
    reason = "Unauthorized"


class Forbidden(ApiError):
    code = 403
    reason = "Forbidden"


class NotFound(ApiError):
    code = 404
    reason = "NotFound"

    @classmethod
    def object(cls, resource: str, group: str, name: str) -> NotFound:
        return cls(
            f'{qualified(resource, group)} "{name}" not found', details=_details(name, group, resource)
        )

    @classmethod
    def path(cls) -> NotFound:
        return cls("the server could not find the requested resource", details={})


class MethodNotAllowed(ApiError):
    code = 405
    reason = "MethodNotAllowed"

    @classmethod
    def verb(cls, verb: str, resource: str) -> MethodNotAllowed:
        return cls(f'{verb} is not supported on resources of kind "{resource}"')


class NotAcceptable(ApiError):
    code = 406
    reason = "NotAcceptable"


class AlreadyExists(ApiError):
    code = 409
    reason = "AlreadyExists"

    @classmethod
    def object(cls, resource: str, group: str, name: str) -> AlreadyExists:
        return cls(
            f'{qualified(resource, group)} "{name}" already exists',
            details=_details(name, group, resource),
        )


class Conflict(ApiError):
    code = 409
    reason = "Conflict"

    @classmethod
    def modified(cls, resource: str, group: str, name: str) -> Conflict:
        return cls(
            f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again",
            details=_details(name, group, resource),
        )


class Gone(ApiError):
    code = 410
    reason = "Gone"


class Expired(ApiError):
    code = 410
    reason = "Expired"

    @classmethod
    def too_old(cls, requested: int, oldest: int) -> Expired:
        return cls(f"too old resource version: {requested} ({oldest})")


class RequestEntityTooLarge(ApiError):
    code = 413
    reason = "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    code = 415
    reason = "UnsupportedMediaType"

    @classmethod
    def accepted(cls, media_types: list[str]) -> UnsupportedMediaType:
        return cls(
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(media_types)
        )


class Invalid(ApiError):
    """422: the object failed validation. ``causes`` are ``FieldError``s, one per offending field."""

    code = 422
    reason = "Invalid"

    def __init__(
        self,
        kind: str,
        group: str,
        name: str,
        causes: list[FieldError],
    ) -> None:
        qualified_kind = f"{kind}.{group}" if group else kind
        summary = ", ".join(c.message_with_field() for c in causes)
        if len(causes) > 1:
            summary = f"[{summary}]"
        message = f'{qualified_kind} "{name}" is invalid: {summary}'
        super().__init__(
            message,
            details={
                **_details(name, group, kind),
                "causes": [c.to_cause() for c in causes],
            },
        )
        self.causes = causes

    @classmethod
    def from_status(cls, message: str, details: dict[str, Any] | None) -> Invalid:
        """Rebuild an Invalid a server sent (clients only see the Status, not the FieldErrors)."""
        err = cls.__new__(cls)
        ApiError.__init__(err, message, details=details)
        err.causes = []
        return err


class UnprocessablePatch(ApiError):
    """422: a patch document was well-formed but could not be applied (a JSON patch ``test`` failed...)."""

    code = 422
    reason = "Invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message, details={"causes": [{"message": message}]})


class TooManyRequests(ApiError):
    code = 429
    reason = "TooManyRequests"


class InternalError(ApiError):
    code = 500
    reason = "InternalError"

    @classmethod
    def wrap(cls, err: BaseException) -> InternalError:
        return cls(f"Internal error occurred: {err}", details={"causes": [{"message": str(err)}]})


class Timeout(ApiError):
    code = 504
    reason = "Timeout"


class FieldError:
    """One validation failure at a field path, worded as ``field.ErrorList`` words it.

    ``kind`` is one of ``Required``, ``Invalid``, ``NotSupported``, ``Forbidden``, ``Duplicate``,
    ``TooLong``, ``TooMany``; the cause reason sent to clients is ``FieldValue<kind>``.
    """

    __slots__ = ("detail", "field", "kind", "value")

    _NO_VALUE = object()

    def __init__(self, kind: str, field: str, value: Any = _NO_VALUE, detail: str = "") -> None:
        self.kind = kind
        self.field = field
        self.value = value
        self.detail = detail

    @classmethod
    def required(cls, field: str, detail: str = "") -> FieldError:
        return cls("Required", field, detail=detail)

    @classmethod
    def invalid(cls, field: str, value: Any, detail: str) -> FieldError:
        return cls("Invalid", field, value, detail)

    @classmethod
    def not_supported(cls, field: str, value: Any, valid: list[str]) -> FieldError:
        quoted = ", ".join(f'"{v}"' for v in valid)
        return cls("NotSupported", field, value, f"supported values: {quoted}")

    @classmethod
    def forbidden(cls, field: str, detail: str) -> FieldError:
        return cls("Forbidden", field, detail=detail)

    @classmethod
    def duplicate(cls, field: str, value: Any) -> FieldError:
        return cls("Duplicate", field, value)

    def _type_text(self) -> str:
        return {
            "Required": "Required value",
            "Invalid": "Invalid value",
            "NotSupported": "Unsupported value",
            "Forbidden": "Forbidden",
            "Duplicate": "Duplicate value",
            "TooLong": "Too long",
            "TooMany": "Too many",
        }.get(self.kind, self.kind)

    def _value_text(self) -> str:
        value = self.value
        if isinstance(value, str):
            return f'"{value}"'
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return "null"
        return str(value)

    def message(self) -> str:
        """The cause message without the field (``Invalid value: -1: must be ...``)."""
        text = self._type_text()
        if self.value is not self._NO_VALUE and self.kind in ("Invalid", "NotSupported", "Duplicate"):
            text += f": {self._value_text()}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def message_with_field(self) -> str:
        return f"{self.field}: {self.message()}"

    def to_cause(self) -> dict[str, Any]:
        return {"reason": f"FieldValue{self.kind}", "message": self.message(), "field": self.field}

    def __repr__(self) -> str:
        return f"FieldError({self.message_with_field()!r})"
