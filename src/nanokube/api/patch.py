"""The patch algorithms of the API server, in one import: ``from nanokube.api import patch``.

=============================================  ===================================  ============================
media type                                     function                             module
=============================================  ===================================  ============================
``application/json-patch+json``                ``json_patch(target, ops)``          ``patch_json``
``application/merge-patch+json``               ``json_merge_patch(target, patch)``  ``patch_json``
``application/strategic-merge-patch+json``     ``strategic_merge_patch(...)``       ``patch_strategic``
``application/apply-patch+yaml``               ``apply_patch(live, applied, ...)``  ``patch_apply``
=============================================  ===================================  ============================

Every function returns a new object and leaves its inputs alone. Failures raise a ``PatchError`` subclass whose
``code`` is the HTTP status Kubernetes answers with: ``PatchDecodeError`` 400 (malformed patch),
``PatchUnsupportedError`` 415 (strategic merge on a kind without schema; a ``PatchDecodeError``),
``PatchApplyError`` 422 (does not apply, e.g. a failed ``test``), ``PatchMergeError`` 500 (a strategic merge Go
refuses with a plain error; a ``PatchApplyError``). The algorithms live in their own modules to keep each small.
"""

from __future__ import annotations

from nanokube.api.patch_apply import apply_patch
from nanokube.api.patch_errors import (
    UNSUPPORTED_SMP,
    PatchApplyError,
    PatchDecodeError,
    PatchError,
    PatchMergeError,
    PatchUnsupportedError,
)
from nanokube.api.patch_json import json_merge_patch, json_patch
from nanokube.api.patch_strategic import strategic_merge_patch

__all__ = [
    "UNSUPPORTED_SMP",
    "PatchApplyError",
    "PatchDecodeError",
    "PatchError",
    "PatchMergeError",
    "PatchUnsupportedError",
    "apply_patch",
    "json_merge_patch",
    "json_patch",
    "strategic_merge_patch",
]
