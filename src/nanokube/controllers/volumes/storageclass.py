"""The default StorageClass ``local-path``, as k3s ships it, and the choice of a default class.

k3s applies a manifest at start: class ``local-path``, provisioner ``rancher.io/local-path``, reclaimPolicy
Delete, WaitForFirstConsumer, marked default. ``ensure_default_storage_class`` does the same once: it creates
the class when missing and leaves an existing one alone (an administrator who edited or un-defaulted it keeps
their choice until they delete it). The PersistentVolumeController calls it when it starts.

``default_class`` is ``GetDefaultClass``: among classes annotated default, the newest wins (ties by name).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from nanokube.api.errors import AlreadyExists
from nanokube.client.interface import Client

from .common import (
    BETA_IS_DEFAULT_CLASS,
    IS_DEFAULT_CLASS,
    JSON,
    WAIT_FOR_FIRST_CONSUMER,
    VolumeSettings,
    meta,
)

log = logging.getLogger(__name__)


def default_storage_class(settings: VolumeSettings) -> JSON:
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": settings.default_class, "annotations": {IS_DEFAULT_CLASS: "true"}},
        "provisioner": settings.provisioner_name,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": WAIT_FOR_FIRST_CONSUMER,
    }


async def ensure_default_storage_class(client: Client, settings: VolumeSettings) -> bool:
    """Create the default class if it does not exist; True when this call created it."""
    if not settings.default_class:
        return False
    resource = client.registry.get("storage.k8s.io", "v1", "storageclasses")
    assert resource is not None
    try:
        await client.create(resource, "", default_storage_class(settings))
    except AlreadyExists:
        return False
    log.info("created the default StorageClass %s (provisioner %s)", settings.default_class,
             settings.provisioner_name)
    return True


def is_default(storage_class: JSON) -> bool:
    notes = meta(storage_class).get("annotations") or {}
    return notes.get(IS_DEFAULT_CLASS) == "true" or notes.get(BETA_IS_DEFAULT_CLASS) == "true"


def default_class(classes: Iterable[JSON]) -> JSON | None:
    defaults = [c for c in classes if is_default(c)]
    if not defaults:
        return None
    # Newest first (RFC 3339 in UTC sorts as text), then by name.
    defaults.sort(key=lambda c: str(meta(c).get("name", "")))
    defaults.sort(key=lambda c: str(meta(c).get("creationTimestamp", "")), reverse=True)
    return defaults[0]
