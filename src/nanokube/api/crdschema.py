"""Custom objects against their CRD's structural schema (``openAPIV3Schema``): validation and pruning.

kube-apiserver validates custom objects with the CRD's schema (types, required, enums, bounds, patterns,
lengths, item counts) and prunes fields the schema does not declare unless
``x-kubernetes-preserve-unknown-fields`` is set. Messages follow its wording, e.g.
``spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"``.
``apiVersion``, ``kind`` and ``metadata`` at the root are the server's, never pruned or checked here.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import FieldError

JSON = dict[str, Any]
_ROOT_FIELDS = ("apiVersion", "kind", "metadata")


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def validate(obj: JSON, schema: JSON) -> list[FieldError]:
    errors: list[FieldError] = []
    body = {k: v for k, v in obj.items() if k not in _ROOT_FIELDS}
    root = dict(schema)
    root["properties"] = {k: v for k, v in (schema.get("properties") or {}).items() if k not in _ROOT_FIELDS}
    root["required"] = [r for r in schema.get("required") or [] if r not in _ROOT_FIELDS]
    _check(body, root, "", errors)
    return errors


def _check(value: Any, schema: JSON, path: str, errors: list[FieldError]) -> None:
    if not schema:
        return
    kind = _type_of(value)
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            errors.append(FieldError.invalid(path, "null", f"{path} in body must be of type {schema['type']}: "
                                                           '"null"'))
        return
    if schema.get("x-kubernetes-int-or-string"):
        if kind not in ("integer", "string"):
            errors.append(FieldError.invalid(path, kind, f"{path} in body must be of type integer,string: "
                                                         f'"{kind}"'))
        return
    wanted = schema.get("type")
    if wanted and not (wanted == kind or (wanted == "number" and kind == "integer")):
        errors.append(FieldError.invalid(path, kind, f'{path} in body must be of type {wanted}: "{kind}"'))
        return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(FieldError.not_supported(path, value, [str(v) for v in schema["enum"]]))
    if kind in ("integer", "number"):
        _bounds(value, schema, path, errors)
    elif kind == "string":
        _string(value, schema, path, errors)
    elif kind == "array":
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(FieldError("TooMany", path, detail=f"must have at most {schema['maxItems']} items"))
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(FieldError.invalid(path, len(value), f"{path} in body should have at least "
                                                               f"{schema['minItems']} items"))
        for i, item in enumerate(value):
            _check(item, schema.get("items") or {}, f"{path}[{i}]", errors)
    elif kind == "object":
        for name in schema.get("required") or []:
            if name not in value:
                errors.append(FieldError.required(_join(path, name)))
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                _check(item, props[key], _join(path, key), errors)
            elif isinstance(extra, dict):
                _check(item, extra, _join(path, key), errors)


def _bounds(value: float, schema: JSON, path: str, errors: list[FieldError]) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None:
        if schema.get("exclusiveMinimum") and value <= low:
            errors.append(FieldError.invalid(path, value, f"{path} in body should be greater than {low}"))
        elif value < low:
            errors.append(FieldError.invalid(path, value, f"{path} in body should be greater than or equal to "
                                                          f"{low}"))
    if high is not None:
        if schema.get("exclusiveMaximum") and value >= high:
            errors.append(FieldError.invalid(path, value, f"{path} in body should be less than {high}"))
        elif value > high:
            errors.append(FieldError.invalid(path, value, f"{path} in body should be less than or equal to {high}"))


def _string(value: str, schema: JSON, path: str, errors: list[FieldError]) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(FieldError("TooLong", path, detail=f"may not be more than {schema['maxLength']} bytes"))
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(FieldError.invalid(path, value, f"{path} in body should be at least {schema['minLength']} "
                                                      "chars long"))
    pattern = schema.get("pattern")
    if pattern and re.search(pattern, value) is None:
        errors.append(FieldError.invalid(path, value, f"{path} in body should match '{pattern}'"))


def prune(obj: JSON, schema: JSON) -> tuple[JSON, list[str]]:
    """A copy of ``obj`` without the fields ``schema`` does not declare, and their paths."""
    unknown: list[str] = []
    out = {k: v for k, v in obj.items() if k in _ROOT_FIELDS}
    props = schema.get("properties") or {}
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    for key, value in obj.items():
        if key in _ROOT_FIELDS:
            continue
        if key in props:
            out[key] = _prune(value, props[key], key, unknown)
        elif preserve:
            out[key] = value
        else:
            unknown.append(key)
    return out, unknown


def _prune(value: Any, schema: JSON, path: str, unknown: list[str]) -> Any:
    if schema.get("x-kubernetes-preserve-unknown-fields") and not schema.get("properties"):
        return value
    if isinstance(value, list):
        items = schema.get("items") or {}
        return [_prune(v, items, f"{path}[{i}]", unknown) for i, v in enumerate(value)]
    if not isinstance(value, dict) or schema.get("x-kubernetes-embedded-resource"):
        return value
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    if props is None and extra is None:
        return value if schema.get("type") != "object" or schema.get("x-kubernetes-preserve-unknown-fields") \
            else _drop_all(value, path, unknown)
    out = {}
    for key, item in value.items():
        if props and key in props:
            out[key] = _prune(item, props[key], _join(path, key), unknown)
        elif isinstance(extra, dict):
            out[key] = _prune(item, extra, _join(path, key), unknown)
        elif extra is True or schema.get("x-kubernetes-preserve-unknown-fields"):
            out[key] = item
        else:
            unknown.append(_join(path, key))
    return out


def _drop_all(value: JSON, path: str, unknown: list[str]) -> JSON:
    unknown.extend(_join(path, key) for key in value)
    return {}
