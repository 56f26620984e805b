"""Label selectors: the string syntax, metav1.LabelSelector dicts, matching, formatting and validation.

One ``Selector`` type serves both sources: ``parse_selector`` reads the query-string syntax (``labelSelector=``,
``kubectl -l``) with the same tokenizer rules and error messages as apimachinery's ``labels.Parse``, and
``selector_from_label_selector`` converts a ``spec.selector`` dict as ``metav1.LabelSelectorAsSelector`` does.
Requirements are kept sorted by key, so ``str(selector)`` gives Go's canonical form (the Scale subresource's
``status.selector``, ``app=x,tier in (a,b)``).

Matching runs on every list item and watch event, so ``Selector.matches`` is a plain loop over precompiled
requirements with no allocation. Parse errors raise ``ValueError`` whose text is Go's; the API server turns them
into ``400 BadRequest``. ``validate_label_selector``/``validate_labels`` return ``FieldError``s for object
validation (``metav1validation.ValidateLabelSelector``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nanokube.api.errors import FieldError
from nanokube.api.names import is_qualified_name, is_valid_label_value

# Operators, spelled as k8s.io/apimachinery/pkg/selection spells them.
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_VALID_OPERATORS = (*_BINARY_OPERATORS, EXISTS, DOES_NOT_EXIST)
_INT64_RE = re.compile(r"[+-]?[0-9]+\Z")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parse_int64(text: str) -> int | None:
    """Go's ``strconv.ParseInt(s, 10, 64)``: optional sign, ASCII digits, in range; else None."""
    number = int(text) if _INT64_RE.match(text) else None
    return number if number is not None and _INT64_MIN <= number <= _INT64_MAX else None


def _go_value(value: Any) -> str:
    # field.Error renders a string with %q and anything else as JSON.
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"))


def _field_error(path: str, value: Any, detail: str) -> str:
    return f"{path}: Invalid value: {_go_value(value)}: {detail}"


def _aggregate(messages: list[str]) -> str:
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``key op values`` term. ``values`` keep their given order; ``str`` sorts them as Go does."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (EQUALS, DOUBLE_EQUALS, IN):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_EQUALS, NOT_IN):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            return self._compare(labels)
        return False

    def _compare(self, labels: Mapping[str, str]) -> bool:
        if self.key not in labels or len(self.values) != 1:
            return False
        have = _parse_int64(labels[self.key])
        want = _parse_int64(self.values[0])
        if have is None or want is None:
            return False
        return have > want if self.operator == GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        values = ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({values})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{values}"


def new_requirement(key: str, operator: str, values: Iterable[str] | None = None) -> Requirement:
    """``labels.NewRequirement``: check key, operator/value-count and values; ValueError with Go's text."""
    vals = None if values is None else list(values)
    errors = _requirement_errors(key, operator, vals)
    if errors:
        raise ValueError(_aggregate(errors))
    return Requirement(key, operator, tuple(vals or ()))


def _requirement_errors(key: str, operator: str, vals: list[str] | None) -> list[str]:
    errors: list[str] = []
    key_errors = is_qualified_name(key)
    if key_errors:
        errors.append(_field_error("key", key, "; ".join(key_errors)))
    count = len(vals or ())
    if operator in (IN, NOT_IN):
        if count == 0:
            errors.append(_field_error("values", vals, "for 'in', 'notin' operators, values set can't be empty"))
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if count != 1:
            errors.append(_field_error("values", vals, "exact-match compatibility requires one single value"))
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if count != 0:
            errors.append(_field_error("values", vals, "values set must be empty for exists and does not exist"))
    elif operator in (GREATER_THAN, LESS_THAN):
        if count != 1:
            errors.append(_field_error("values", vals, "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, value in enumerate(vals or ()):
            if _parse_int64(value) is None:
                errors.append(_field_error(f"values[{i}]", value, "for 'Gt', 'Lt' operators, the value must be an integer"))
    else:
        supported = ", ".join(f'"{op}"' for op in _VALID_OPERATORS)
        errors.append(f"operator: Unsupported value: {_go_value(operator)}: supported values: {supported}")
    for i, value in enumerate(vals or ()):
        value_errors = is_valid_label_value(value)
        if value_errors:
            errors.append(_field_error(f"values[{i}][{key}]", value, "; ".join(value_errors)))
    return errors


class Selector:
    """An AND of requirements. ``Selector.nothing()`` matches no object; an empty selector matches all."""

    __slots__ = ("_nothing", "requirements")

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False) -> None:
        self.requirements: tuple[Requirement, ...] = tuple(sorted(requirements, key=lambda r: r.key))
        self._nothing = nothing

    @classmethod
    def everything(cls) -> Selector:
        return cls()

    @classmethod
    def nothing(cls) -> Selector:
        """What a missing (null) LabelSelector means: matches no object."""
        return cls(nothing=True)

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (Go's ``Empty``; false for ``nothing()``)."""
        return not self._nothing and not self.requirements

    @property
    def matches_nothing(self) -> bool:
        return self._nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self._nothing:
            return False
        present = labels if labels is not None else {}
        return all(requirement.matches(present) for requirement in self.requirements)

    def add(self, *requirements: Requirement) -> Selector:
        """A new selector with more requirements (a ``nothing()`` selector stays nothing, as in Go)."""
        if self._nothing:
            return self
        return Selector((*self.requirements, *requirements))

    def requires_exact_match(self, key: str) -> str | None:
        """The single value the selector demands for ``key`` (``=``, ``==`` or one-value ``in``), else None."""
        for requirement in self.requirements:
            if requirement.key == key:
                if requirement.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(requirement.values) == 1:
                    return requirement.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return "Selector(<nothing>)" if self._nothing else f"Selector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Selector):
            return NotImplemented
        return (self._nothing, self.requirements) == (other._nothing, other.requirements)

    __hash__ = None  # type: ignore[assignment]


def selector_from_set(labels: Mapping[str, str] | None) -> Selector:
    """``labels.SelectorFromSet``: equality on every pair (a Service's or RC's map selector); no validation."""
    return Selector(Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items())


_LABEL_SELECTOR_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def selector_from_label_selector(label_selector: Mapping[str, Any] | None) -> Selector:
    """``metav1.LabelSelectorAsSelector``.

    ``None`` (a missing selector) matches nothing; ``{}`` (no matchLabels, no matchExpressions) matches
    everything. Raises ValueError with Go's text for an unknown operator or an invalid key/value.
    """
    if label_selector is None:
        return Selector.nothing()
    match_labels = label_selector.get("matchLabels") or {}
    expressions = label_selector.get("matchExpressions") or []
    requirements = [new_requirement(k, EQUALS, [v]) for k, v in match_labels.items()]
    for expr in expressions:
        operator = expr.get("operator", "")
        op = _LABEL_SELECTOR_OPERATORS.get(operator)
        if op is None:
            raise ValueError(f"{json.dumps(operator)} is not a valid label selector operator")
        values = expr.get("values")
        requirements.append(new_requirement(expr.get("key", ""), op, values if values else None))
    return Selector(requirements)


def format_label_selector(label_selector: Mapping[str, Any] | None) -> str:
    """``metav1.FormatLabelSelector``: the string form, ``<none>`` when empty, ``<error>`` when invalid."""
    try:
        text = str(selector_from_label_selector(label_selector))
    except ValueError:
        return "<error>"
    return text or "<none>"


def validate_labels(labels: Mapping[str, Any] | None, field_path: str) -> list[FieldError]:
    """``metav1validation.ValidateLabels``: every key a qualified name, every value a label value.

    As in Go, the errors name the map's own path (``metadata.labels``), not the key.
    """
    errors: list[FieldError] = []
    for key, value in (labels or {}).items():
        errors.extend(FieldError.invalid(field_path, key, msg) for msg in is_qualified_name(key))
        text = value if isinstance(value, str) else str(value)
        errors.extend(FieldError.invalid(field_path, text, msg) for msg in is_valid_label_value(text))
    return errors


def validate_label_selector(
    label_selector: Mapping[str, Any] | None,
    field_path: str,
    *,
    allow_invalid_label_value: bool = False,
) -> list[FieldError]:
    """``metav1validation.ValidateLabelSelector`` for ``spec.selector``-style dicts (None is valid)."""
    if label_selector is None:
        return []
    errors = validate_labels(label_selector.get("matchLabels"), f"{field_path}.matchLabels")
    for i, expr in enumerate(label_selector.get("matchExpressions") or []):
        errors.extend(_validate_requirement(expr, f"{field_path}.matchExpressions[{i}]", allow_invalid_label_value))
    return errors


def _validate_requirement(expr: Mapping[str, Any], path: str, allow_invalid_value: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    operator = expr.get("operator", "")
    values = list(expr.get("values") or [])
    if operator in ("In", "NotIn"):
        if not values:
            errors.append(FieldError.required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            errors.append(
                FieldError.forbidden(f"{path}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
            )
    else:
        errors.append(FieldError.invalid(f"{path}.operator", operator, "not a valid selector operator"))
    key = expr.get("key", "")
    errors.extend(FieldError.invalid(f"{path}.key", key, msg) for msg in is_qualified_name(key))
    if not allow_invalid_value:
        for j, value in enumerate(values):
            errors.extend(FieldError.invalid(f"{path}.values[{j}]", value, msg) for msg in is_valid_label_value(value))
    return errors


# --- the string syntax (labels.Parse) ---------------------------------------------------------------------

_EOS, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _ID, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(13)
_SYMBOLS = {")": _CLOSE, ",": _COMMA, "!": _NOT, "==": _DEQ, "=": _EQ, ">": _GT, "<": _LT, "!=": _NEQ, "(": _OPEN}
_KEYWORDS = {"in": _IN, "notin": _NOTIN}
_OPERATOR_TOKENS = {_IN: IN, _NOTIN: NOT_IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _NEQ: NOT_EQUALS,
                    _GT: GREATER_THAN, _LT: LESS_THAN}
_SPECIAL = frozenset("=!(),><")
_SPACE = frozenset(" \t\r\n")


def _lex(text: str) -> list[tuple[int, str]]:
    """Tokens as Go's lexer cuts them: ``==`` and ``!=`` are one token, other symbols one character each."""
    tokens: list[tuple[int, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            tokens.append((_EOS, ""))
            return tokens
        if text[i] in _SPECIAL:
            size = 2 if text[i : i + 2] in ("==", "!=") else 1
            tokens.append((_SYMBOLS[text[i : i + size]], text[i : i + size]))
            i += size
            continue
        start = i
        while i < n and text[i] not in _SPECIAL and text[i] not in _SPACE:
            i += 1
        word = text[start:i]
        tokens.append((_KEYWORDS.get(word, _ID), word))


class _Parser:
    """Recursive descent over the token list; 'in'/'notin' read as identifiers wherever a value may stand."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self, as_value: bool = True) -> tuple[int, str]:
        kind, literal = self.tokens[self.pos]
        return (_ID if as_value and kind in (_IN, _NOTIN) else kind), literal

    def take(self, as_value: bool = True) -> tuple[int, str]:
        token = self.peek(as_value)
        self.pos += 1
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self.peek()
            if kind == _EOS:
                return requirements
            if kind not in (_ID, _NOT):
                raise ValueError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except ValueError as err:
                raise ValueError(f"unable to parse requirement: {err}") from None
            kind, literal = self.take()
            if kind == _EOS:
                return requirements
            if kind != _COMMA:
                raise ValueError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self.peek()
            if kind not in (_ID, _NOT):
                raise ValueError(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        negated = False
        kind, key = self.take()
        if kind == _NOT:
            negated = True
            kind, key = self.take()
        if kind != _ID:
            raise ValueError(f"found '{key}', expected: identifier")
        key_errors = is_qualified_name(key)
        if key_errors:
            raise ValueError(_field_error("<nil>", key, "; ".join(key_errors)))
        if negated or self.peek()[0] in (_EOS, _COMMA):
            return new_requirement(key, DOES_NOT_EXIST if negated else EXISTS, [])
        kind, literal = self.take(as_value=False)
        operator = _OPERATOR_TOKENS.get(kind)
        if operator is None:
            raise ValueError(f"found '{literal}', expected: {', '.join(_BINARY_OPERATORS)}")
        values = self.value_set() if operator in (IN, NOT_IN) else self.exact_value()
        return new_requirement(key, operator, sorted(values))

    def value_set(self) -> set[str]:
        kind, literal = self.take()
        if kind != _OPEN:
            raise ValueError(f"found '{literal}' expected: '('")
        kind, literal = self.peek()
        if kind == _CLOSE:  # "()" is the set holding the empty value
            self.take()
            return {""}
        if kind not in (_ID, _COMMA):
            raise ValueError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        self.take()  # the ')' that ended the list
        return values

    def identifiers(self) -> set[str]:
        """A comma list where empty entries are the empty value: ``(a,,b)``, ``(,a)``, ``(a,)``."""
        values: set[str] = set()
        while True:
            kind, literal = self.take()
            if kind == _ID:
                values.add(literal)
                kind, literal = self.peek()
                if kind == _CLOSE:
                    return values
                if kind != _COMMA:
                    raise ValueError(f"found '{literal}', expected: ',' or ')'")
            elif kind == _COMMA:
                if not values:
                    values.add("")
                kind, _ = self.peek()
                if kind == _CLOSE:
                    values.add("")
                    return values
                if kind == _COMMA:
                    self.take()
                    values.add("")
            else:
                raise ValueError(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        kind, _ = self.peek()
        if kind in (_EOS, _COMMA):
            return {""}
        kind, literal = self.take()
        if kind != _ID:
            raise ValueError(f"found '{literal}', expected: identifier")
        return {literal}


def parse_selector(text: str) -> Selector:
    """``labels.Parse``: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``,
    ``k>1``, ``k<1``, commas meaning AND, whitespace ignored. ValueError with Go's message on bad input."""
    return Selector(_Parser(text).parse())
