"""Field selectors: parsing (``fieldSelector=``), the field labels each kind supports, and fast matching.

Parsing follows apimachinery's ``fields.ParseSelector``: comma-separated ``field=value``, ``field==value`` or
``field!=value`` terms, ``\\,`` ``\\=`` ``\\\\`` escapes in values, terms sorted, Go's error texts. A field that
an object lacks matches as the empty string, which is how ``kubectl describe node`` finds cluster-scoped events
with ``involvedObject.namespace=``.

Which labels a kind accepts, and the message when it does not, come from Kubernetes' per-kind field-label
conversion functions (``pkg/apis/*/v1/conversion.go``); the values come from the registry strategies'
``ToSelectableFields``. Accepted labels may be aliases (``spec.host`` for pods, ``regarding.*`` for
events.k8s.io), so the API server must pass every selector through ``check_supported`` (400 on failure), which
returns it rewritten to the canonical names that ``field_set`` produces.

nanokube accepts two labels that kube-apiserver 1.37 rejects, because they are useful and harmless:
pods ``status.hostIP`` and apps/v1 replicasets ``status.replicas`` (listed in Kubernetes' documentation, missing
from its apps/v1 conversion). Like Kubernetes, pods accept ``status.podIPs`` but never give it a value.

Matching runs on every list item and watch event: ``compile_matcher`` returns a closure that reads only the
fields the selector names, straight from the object dict, without building the whole field set.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Getter = Callable[[Mapping[str, Any]], str]
Matcher = Callable[[Mapping[str, Any]], bool]

EQUALS = "="
NOT_EQUALS = "!="
_OPERATORS = ("!=", "==", "=")  # "==" before "=" so a value never starts with a stray "="


class FieldSelector:
    """An AND of ``(field, operator, value)`` requirements; operators are ``=`` and ``!=``."""

    __slots__ = ("requirements",)

    def __init__(self, requirements: Iterable[tuple[str, str, str]] = ()) -> None:
        self.requirements: tuple[tuple[str, str, str], ...] = tuple(requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Match a field set; a missing field reads as ``""``."""
        return all((fields.get(name, "") == value) == (op == EQUALS) for name, op, value in self.requirements)

    def requires_exact_match(self, name: str) -> str | None:
        """The value an ``=`` term demands for ``name`` (for index lookups), else None."""
        for field_name, op, value in self.requirements:
            if field_name == name and op == EQUALS:
                return value
        return None

    def __str__(self) -> str:
        return ",".join(f"{name}{op}{escape_value(value)}" for name, op, value in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSelector) and self.requirements == other.requirements

    __hash__ = None  # type: ignore[assignment]


def escape_value(value: str) -> str:
    """``fields.EscapeValue``: backslash-escape ``\\``, ``,`` and ``=`` for use in a selector string."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_value(text: str) -> str:
    """``fields.UnescapeValue``; ValueError with Go's text for a bad escape or a bare ``,``/``=``."""
    if not any(ch in text for ch in "\\,="):
        return text
    out: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            if ch not in "\\,=":
                raise ValueError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise ValueError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise ValueError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    terms: list[str] = []
    start = 0
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in _OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def parse_field_selector(text: str) -> FieldSelector:
    """``fields.ParseSelector``: ``a=b,c!=d``; empty text (or only empty terms) selects everything."""
    requirements: list[tuple[str, str, str]] = []
    for term in sorted(_split_terms(text)) if text else ():
        if not term:
            continue
        parts = _split_term(term)
        if parts is None:
            raise ValueError(f"invalid selector: '{text}'; can't understand '{term}'")
        name, op, raw = parts
        requirements.append((name, NOT_EQUALS if op == NOT_EQUALS else EQUALS, unescape_value(raw)))
    return FieldSelector(requirements)


# --- per-kind field labels --------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _path(*keys: str, default: str = "") -> Getter:
    """A getter for a nested field; missing or null reads as ``default``."""

    def get(obj: Mapping[str, Any]) -> str:
        current: Any = obj
        for key in keys:
            if not isinstance(current, dict):
                return default
            current = current.get(key)
            if current is None:
                return default
        return _text(current)

    return get


def _blank(obj: Mapping[str, Any]) -> str:
    return ""


def _pod_ip(obj: Mapping[str, Any]) -> str:
    """``status.podIPs[0].ip``, as Kubernetes reads it, or the singular ``status.podIP``."""
    status = obj.get("status")
    if not isinstance(status, dict):
        return ""
    ips = status.get("podIPs")
    if isinstance(ips, list) and ips and isinstance(ips[0], dict):
        return _text(ips[0].get("ip") or "")
    return _text(status.get("podIP") or "")


def _either(first: Getter, second: Getter) -> Getter:
    """The first non-empty of two getters: events are read in core (``involvedObject``) or events.k8s.io
    (``regarding``) shape alike."""
    return lambda obj: first(obj) or second(obj)


def _involved(key: str) -> Getter:
    return _either(_path("involvedObject", key), _path("regarding", key))


_reporting = _either(_path("reportingComponent"), _path("reportingController"))
_source = _either(_either(_path("source", "component"), _path("deprecatedSource", "component")), _reporting)


def _not_supported(label: str) -> str:
    return f"field label not supported: {label}"


def _not_known(label: str) -> str:
    return f'{json.dumps(label)} is not a known field selector: only "metadata.name", "metadata.namespace"'


@dataclass(frozen=True)
class FieldSpec:
    """The field labels of one kind: ``getters`` by canonical name, ``labels`` accepted (label -> canonical
    name), and the error text for any other label."""

    getters: Mapping[str, Getter]
    labels: Mapping[str, str]
    error: Callable[[str], str] = _not_supported
    supported: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "supported", frozenset(self.labels))

    def field_set(self, obj: Mapping[str, Any]) -> dict[str, str]:
        return {name: get(obj) for name, get in self.getters.items()}

    def check(self, selector: FieldSelector) -> FieldSelector:
        """The selector with labels rewritten to canonical names; ValueError for an unsupported label."""
        converted = []
        for name, op, value in selector.requirements:
            canonical = self.labels.get(name)
            if canonical is None:
                raise ValueError(self.error(name))
            converted.append((canonical, op, value))
        return FieldSelector(converted)

    def matcher(self, selector: FieldSelector) -> Matcher:
        """A fast predicate over object dicts; checks and converts the selector first."""
        terms = tuple(
            (self.getters.get(name, _blank), op == EQUALS, value) for name, op, value in self.check(selector).requirements
        )
        if not terms:
            return lambda obj: True
        if len(terms) == 1:
            get, equal, want = terms[0]
            return lambda obj: (get(obj) == want) == equal

        def match(obj: Mapping[str, Any]) -> bool:
            # A plain loop: no generator per call on the watch hot path.
            for get, equal, want in terms:  # noqa: SIM110
                if (get(obj) == want) != equal:
                    return False
            return True

        return match


_NAME = {"metadata.name": _path("metadata", "name")}
_META = {**_NAME, "metadata.namespace": _path("metadata", "namespace")}


def _spec(
    getters: Mapping[str, Getter], error: Callable[[str], str] = _not_supported, aliases: Mapping[str, str] | None = None
) -> FieldSpec:
    return FieldSpec(getters, {**{name: name for name in getters}, **(aliases or {})}, error)


_EVENT_GETTERS: dict[str, Getter] = {
    **{f"involvedObject.{key}": _involved(key) for key in
       ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
    "reason": _path("reason"),
    "reportingComponent": _reporting,
    "source": _source,
    "type": _path("type"),
    **_META,
}

_EVENTS_K8S_IO = FieldSpec(
    _EVENT_GETTERS,
    {
        **{f"regarding.{key}": f"involvedObject.{key}" for key in
           ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
        "reportingController": "reportingComponent",
        **{name: name for name in ("reason", "source", "type", "metadata.namespace", "metadata.name")},
    },
)

_BUILTIN: dict[tuple[str, str], FieldSpec] = {
    ("", "Pod"): _spec(
        {
            **_META,
            "spec.nodeName": _path("spec", "nodeName"),
            "spec.restartPolicy": _path("spec", "restartPolicy"),
            "spec.schedulerName": _path("spec", "schedulerName"),
            "spec.serviceAccountName": _path("spec", "serviceAccountName"),
            "spec.hostNetwork": _path("spec", "hostNetwork", default="false"),
            "status.phase": _path("status", "phase"),
            "status.podIP": _pod_ip,
            "status.podIPs": _blank,
            "status.nominatedNodeName": _path("status", "nominatedNodeName"),
            "status.hostIP": _path("status", "hostIP"),
        },
        aliases={"spec.host": "spec.nodeName"},  # old v1 clients
    ),
    ("", "Node"): _spec({**_NAME, "spec.unschedulable": _path("spec", "unschedulable", default="false")}),
    ("", "ReplicationController"): _spec({**_META, "status.replicas": _path("status", "replicas", default="0")}),
    ("", "Event"): _spec(_EVENT_GETTERS),
    ("events.k8s.io", "Event"): _EVENTS_K8S_IO,
    ("", "Namespace"): _spec({**_NAME, "status.phase": _path("status", "phase")}),
    ("", "Secret"): _spec({**_META, "type": _path("type")}),
    ("", "Service"): _spec(
        {**_META, "spec.clusterIP": _path("spec", "clusterIP"), "spec.type": _path("spec", "type")}
    ),
    ("apps", "ReplicaSet"): _spec({**_META, "status.replicas": _path("status", "replicas", default="0")}, _not_known),
    ("batch", "Job"): _spec(
        {**_META, "status.successful": _path("status", "succeeded", default="0")},
        lambda label: f"field label {json.dumps(label)} not supported for batchv1.Job",
    ),
}

_DEFAULT = _spec(_META, _not_known)


def field_spec(group: str, kind: str) -> FieldSpec:
    """The spec for a built-in kind; kinds without their own labels get ``metadata.name``/``namespace``."""
    return _BUILTIN.get((group, kind), _DEFAULT)


def custom_resource_field_spec(namespaced: bool, selectable_fields: Iterable[str] = ()) -> FieldSpec:
    """A CRD's spec: ``metadata.name``, ``metadata.namespace`` when namespaced, and each
    ``spec.versions[].selectableFields[].jsonPath`` (``.spec.color`` becomes the label ``spec.color``)."""
    getters: dict[str, Getter] = dict(_META if namespaced else _NAME)
    for json_path in selectable_fields:
        label = json_path.lstrip(".")
        getters[label] = _path(*label.split("."))
    return _spec(getters)


def field_set(group: str, kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """Every field label of a built-in kind with this object's value (canonical names)."""
    return field_spec(group, kind).field_set(obj)


def supported_fields(group: str, kind: str) -> frozenset[str]:
    """The labels a field selector may use for this kind, aliases included."""
    return field_spec(group, kind).supported


def check_supported(group: str, kind: str, selector: FieldSelector) -> FieldSelector:
    """Reject an unsupported label with kube's message (ValueError -> 400); return the canonical selector."""
    return field_spec(group, kind).check(selector)


def compile_matcher(group: str, kind: str, selector: FieldSelector) -> Matcher:
    """``check_supported`` plus a fast predicate over object dicts for list filtering and watch events."""
    return field_spec(group, kind).matcher(selector)
