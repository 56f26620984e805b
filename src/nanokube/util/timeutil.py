"""Timestamps as Kubernetes writes them: RFC 3339 in UTC, seconds precision (``2026-11-27T18:00:26Z``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(when: datetime | None = None) -> str:
    return (when or now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(when: datetime | None = None) -> str:
    return (when or now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> datetime:
    """Parse ``2026-11-27T18:00:26Z``, with fractions or a ``+00:00`` offset (the Python client sends those)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def after(seconds: float, start: datetime | None = None) -> str:
    return rfc3339((start or now()) + timedelta(seconds=seconds))
