"""Field ownership on writes: keeping ``metadata.managedFields`` up to date, as kube's fieldmanager does.

Every write through the REST API names a field manager (``fieldManager``, else one derived from the
User-Agent); after the write, ``metadata.managedFields`` must say which manager owns which fields. Three cases:

* server-side apply computed the object's managedFields itself (``nanokube.api.managedfields.apply``), so the
  write keeps what it was given;
* a write from the in-process components (no manager) keeps whatever ownership the object had, as the
  components' writes are not tracked;
* any other write (create, update, patch, status) gives its manager the fields it changed
  (``nanokube.api.managedfields.update``), starting from managedFields the client sent, if it sent any.

The ownership computation itself lives in ``nanokube.api.managedfields``; this module only decides which of the
three applies and never fails a write: an object whose fields cannot be tracked is stored untracked.
"""

from __future__ import annotations

import logging
from typing import Any

from nanokube.api import managedfields
from nanokube.api.registry import Resource
from nanokube.util.timeutil import rfc3339

log = logging.getLogger(__name__)
JSON = dict[str, Any]


def track(resource: Resource, live: JSON | None, desired: JSON, incoming: Any, manager: str | None,
          applied: bool, subresource: str) -> None:
    """Record in ``desired``'s ``metadata.managedFields`` which manager owns which fields after this write.

    ``live`` is the object before the write (None on create), ``incoming`` the managedFields the client sent
    (None when it sent none), ``applied`` whether ``desired`` comes from server-side apply, ``subresource``
    "" or "status"."""
    meta = desired["metadata"]
    if applied:
        if incoming is not None:
            meta["managedFields"] = incoming
        return
    if manager is None:
        return
    if incoming is not None:
        meta["managedFields"] = incoming
    try:
        entries = managedfields.update(live, desired, manager, definition=resource.definition or None,
                                       api_version=resource.api_version, now=rfc3339(),
                                       subresource=subresource, schema=resource.schema)
    except managedfields.ManagedFieldsError:
        log.warning("could not track field ownership of %s %s", resource.qualified, meta.get("name"))
        return
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)
