"""Shared builders for the validation tests: valid objects of each kind, and error-list helpers."""

from __future__ import annotations

import copy
from typing import Any

from nanokube.api import defaults, validation
from nanokube.api.errors import FieldError

JSON = dict[str, Any]


def created(group: str, kind: str, obj: JSON) -> list[FieldError]:
    """Defaults then create validation, as the API server runs them."""
    obj = copy.deepcopy(obj)
    defaults.apply(group, kind, obj)
    return validation.validate_create(group, kind, obj)


def updated(group: str, kind: str, new: JSON, old: JSON) -> list[FieldError]:
    new, old = copy.deepcopy(new), copy.deepcopy(old)
    defaults.apply(group, kind, new)
    defaults.apply(group, kind, old)
    return validation.validate_update(group, kind, new, old)


def texts(errors: list[FieldError]) -> list[str]:
    return [e.message_with_field() for e in errors]


def only(errors: list[FieldError]) -> FieldError:
    assert len(errors) == 1, texts(errors)
    return errors[0]


def meta(name: str = "web", namespace: str | None = "default", **extra: Any) -> JSON:
    m: JSON = {"name": name, **extra}
    if namespace is not None:
        m["namespace"] = namespace
    return m


def container(name: str = "app", image: str = "nginx:1.25", **extra: Any) -> JSON:
    return {"name": name, "image": image, **extra}


def pod(**spec: Any) -> JSON:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta("web"),
            "spec": {"containers": [container()], **spec}}


def template(labels: JSON | None = None, **spec: Any) -> JSON:
    return {"metadata": {"labels": {"app": "web"} if labels is None else labels},
            "spec": {"containers": [container()], **spec}}


def deployment(**spec: Any) -> JSON:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(),
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template(), **spec}}


def workload(kind: str, **spec: Any) -> JSON:
    obj = deployment(**spec)
    obj["kind"] = kind
    return obj


def job(uid: str = "0e1b6a52-1", **spec: Any) -> JSON:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("pi", uid=uid),
            "spec": {"template": {"spec": {"containers": [container("pi", "perl")], "restartPolicy": "Never"}},
                     **spec}}


def cronjob(**spec: Any) -> JSON:
    body: JSON = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {
        "spec": {"containers": [container()], "restartPolicy": "OnFailure"}}}}}
    body.update(spec)
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("backup"), "spec": body}


def service(**spec: Any) -> JSON:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta("web"),
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}
