"""Tables for custom resources: ``Name`` plus the CRD's ``additionalPrinterColumns``, as apiextensions prints.

A version without printer columns gets one ``Age`` column (type ``date`` on ``.metadata.creationTimestamp``).
Each column's JSONPath is evaluated with the subset CRDs use in practice: dotted fields (``.spec.replicas``),
quoted keys (``.metadata.labels['app.kubernetes.io/name']``), indexes (``.status.conditions[0]``), ``[*]`` and
equality filters (``.status.conditions[?(@.type=="Ready")].status``); the first match is the value, as in
apiextensions. Cells are typed by the column: integers and numbers as JSON numbers, booleans as booleans,
``date`` as an age (``<invalid>`` if unparsable), ``string`` as jsonpath prints (maps and lists as compact JSON);
a missing value or one of the wrong type is ``null``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from nanokube.api.tables.common import (
    JSON,
    META,
    NAME,
    Column,
    Context,
    Printer,
    name_of,
    parse_time,
    since,
)

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-/$]+)"""
    r"""|\[\s*(?P<quote>['"])(?P<key>.*?)(?P=quote)\s*\]"""
    r"""|\[\s*(?P<index>-?\d+)\s*\]"""
    r"""|\[\s*(?P<star>\*)\s*\]"""
    r"""|\[\s*\?\(\s*@\.(?P<fpath>[A-Za-z0-9_.\-/]+)\s*(?P<op>==|!=)\s*(?P<fq>['"]?)(?P<fval>.*?)(?P=fq)\s*\)\s*\]"""
)

# What apiextensions serves for a version that declares no printer columns.
AGE_COLUMN = Column("Age", "date", (META, "creationTimestamp"))
AGE_PATH = ".metadata.creationTimestamp"


class JSONPathError(ValueError):
    pass


def parse_path(path: str) -> list[tuple[str, Any]]:
    """Steps of a JSONPath (with or without ``{}``/``$``): ("field", name), ("index", n), ("all", None),
    ("filter", (field steps, op, value)). Raises JSONPathError for anything outside the subset."""
    body = path.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1].strip()
    if body.startswith("$"):
        body = body[1:]
    steps: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(body):
        match = _TOKEN.match(body, pos)
        if match is None:
            raise JSONPathError(f"unrecognized column definition {path!r}")
        pos = match.end()
        if match.group("field") is not None:
            steps.append(("field", match.group("field")))
        elif match.group("quote"):
            steps.append(("field", match.group("key")))
        elif match.group("index") is not None:
            steps.append(("index", int(match.group("index"))))
        elif match.group("star"):
            steps.append(("all", None))
        else:
            steps.append(("filter", (match.group("fpath").split("."), match.group("op"), match.group("fval"))))
    return steps


def _filter_value(item: Any, fields: list[str]) -> Any:
    for name in fields:
        if not isinstance(item, Mapping):
            return None
        item = item.get(name)
    return item


def _matches(item: Any, fields: list[str], op: str, expected: str) -> bool:
    value = _filter_value(item, fields)
    if isinstance(value, bool):
        value = "true" if value else "false"
    equal = value is not None and str(value) == expected
    return equal if op == "==" else (value is not None and not equal)


def _step(kind: str, arg: Any, value: Any) -> list[Any]:
    if kind == "field":
        return [value[arg]] if isinstance(value, Mapping) and arg in value else []
    if kind == "index":
        return [value[arg]] if isinstance(value, list) and -len(value) <= arg < len(value) else []
    if kind == "all":
        if isinstance(value, Mapping):
            return list(value.values())
        return list(value) if isinstance(value, list) else []
    return [item for item in value if _matches(item, *arg)] if isinstance(value, list) else []


def find(obj: Any, steps: list[tuple[str, Any]]) -> list[Any]:
    """All values the steps reach, in document order (missing keys simply match nothing)."""
    current = [obj]
    for kind, arg in steps:
        current = [found for value in current for found in _step(kind, arg, value)]
    return current


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def typed_cell(column_type: str, value: Any, ctx: Context) -> Any:
    """``cellForJSONValue`` plus jsonpath printing for string columns."""
    if value is None:
        return None
    if column_type == "string":
        return _as_text(value)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if column_type == "integer" and is_number:
        return int(value)
    if column_type == "number" and is_number:
        return float(value)
    if column_type == "boolean" and isinstance(value, bool):
        return value
    if column_type == "date" and isinstance(value, str):
        if value and parse_time(value) is None:
            return "<invalid>"
        return since(value, ctx.now)
    return None


def _json_path(spec: Mapping[str, Any]) -> str:
    return str(spec.get("jsonPath") or spec.get("JSONPath") or "")


def _column(spec: Mapping[str, Any]) -> Column:
    path = _json_path(spec)
    description = str(spec.get("description") or "")
    return Column(
        str(spec.get("name", "")), str(spec.get("type", "string")),
        description or f"Custom resource definition column (in JSONPath format): {path}",
        int(spec.get("priority") or 0), str(spec.get("format") or ""),
    )


def custom_printer(columns: list[JSON] | None) -> Printer:
    """The printer for a CRD version with these ``additionalPrinterColumns``."""
    specs = [c for c in columns or () if isinstance(c, Mapping)]
    defined = tuple(_column(spec) for spec in specs) or (AGE_COLUMN,)
    paths: list[list[tuple[str, Any]] | None] = []
    for path in [_json_path(spec) for spec in specs] or [AGE_PATH]:
        try:
            paths.append(parse_path(path))
        except JSONPathError:
            paths.append(None)

    def cells(obj: JSON, ctx: Context) -> list[Any]:
        row: list[Any] = [name_of(obj)]
        for column, steps in zip(defined, paths, strict=True):
            found = find(obj, steps) if steps is not None else []
            row.append(typed_cell(column.type, found[0], ctx) if found else None)
        return row

    return Printer((NAME, *defined), cells)
