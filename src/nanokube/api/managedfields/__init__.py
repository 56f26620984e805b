"""Server-side apply field ownership (``metadata.managedFields``), as pure functions over JSON objects.

The API server calls ``update`` after every non-apply write (create, update, patch; ``subresource="status"``
for status writes) and ``apply`` for ``application/apply-patch+yaml``; ``ApplyConflict`` carries kube's 409.
``FieldSet`` is the set of owned paths with its ``FieldsV1`` form; ``fields_of`` gives the paths an object sets.

Modules: ``fieldset`` (paths, FieldsV1), ``shape`` (the schema as ownership sees it), ``typed`` (set, compare,
merge and remove walks), ``updater`` (one write's ownership changes), ``manager`` (entries, Update), ``apply``.
"""

from nanokube.api.managedfields.apply import LAST_APPLIED, ApplyConflict, apply, fields_of
from nanokube.api.managedfields.fieldset import FieldSet, FieldsV1Error, path_string
from nanokube.api.managedfields.manager import (
    ManagedFieldsError,
    decode,
    default_manager,
    encode,
    reset_fields,
    update,
)

__all__ = [
    "LAST_APPLIED",
    "ApplyConflict",
    "FieldSet",
    "FieldsV1Error",
    "ManagedFieldsError",
    "apply",
    "decode",
    "default_manager",
    "encode",
    "fields_of",
    "path_string",
    "reset_fields",
    "update",
]
