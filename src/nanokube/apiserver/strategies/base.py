"""What happens to an object on its way into the store, per kind.

A ``Strategy`` is the kube-apiserver ``RESTCreateStrategy``/``RESTUpdateStrategy`` of one kind: it wipes what a
client may not set (status on create, spec on a status write), keeps ``generation`` counting spec changes,
applies defaults and runs validation. The generic one serves every kind; kinds with extra rules (pods,
namespaces, services, custom resource definitions) subclass it in their own modules.

Every hook gets a private copy of the object and may change it in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nanokube.api import crdschema, defaults, validation
from nanokube.api.errors import FieldError
from nanokube.api.registry import Resource

JSON = dict[str, Any]

# Top-level fields that are not part of the object's desired state: changes to them do not bump generation.
_NON_SPEC = frozenset({"apiVersion", "kind", "metadata", "status"})


def spec_of(obj: JSON) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in _NON_SPEC}


@dataclass
class StrategyOptions:
    """Cluster-wide knobs some kinds' rules read."""

    # DefaultTolerationSeconds admission: how long Pods stay on a not-ready or unreachable node by default.
    pod_toleration_seconds: int = 300


class Strategy:
    """Generic rules; right for most kinds."""

    def __init__(self, resource: Resource, options: StrategyOptions | None = None) -> None:
        self.resource = resource
        self.options = options or StrategyOptions()
        self.has_status = resource.subresource("status") is not None
        # Kinds that carry a desired state (spec) track generation; plain data kinds (ConfigMap) do not.
        self.tracks_generation = self.has_status or resource.custom

    # -- create ------------------------------------------------------------------------------------------
    def prepare_create(self, obj: JSON) -> None:
        """Wipe what a client may not set on create and set generation."""
        # Nodes register with their status in one write (kube's node strategy keeps it); other kinds start
        # from their initial status.
        if self.has_status and (self.resource.group, self.resource.plural) != ("", "nodes"):
            obj.pop("status", None)
        if self.tracks_generation:
            obj["metadata"]["generation"] = 1
        if not self.resource.custom:
            defaults.prepare_create(self.resource.group, self.resource.kind, obj)

    def default(self, obj: JSON) -> None:
        if not self.resource.custom:
            defaults.apply(self.resource.group, self.resource.kind, obj)

    def validate_create(self, obj: JSON) -> list[FieldError]:
        if self.resource.custom:
            errors = validation.validate_metadata_only(obj, namespaced=self.resource.namespaced)
            return errors + crdschema.validate(obj, self.resource.schema or {})
        return validation.validate_create(self.resource.group, self.resource.kind, obj)

    # -- update ------------------------------------------------------------------------------------------
    def prepare_update(self, new: JSON, old: JSON) -> None:
        """A main-resource write: status stays as it was; generation counts spec changes."""
        if self.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        self._bump_generation(new, old)

    def prepare_status_update(self, new: JSON, old: JSON) -> None:
        """A ``/status`` write: everything but status (and metadata kube lets through) stays as it was."""
        status = new.get("status")
        for key in list(new):
            if key not in ("metadata", "status"):
                del new[key]
        for key, value in old.items():
            if key not in ("metadata", "status"):
                new[key] = value
        if status is None:
            new.pop("status", None)
        # Status writes may not change labels, annotations, finalizers or owners either (kube resets them).
        for field in ("labels", "annotations", "finalizers", "ownerReferences"):
            if field in old["metadata"]:
                new["metadata"][field] = old["metadata"][field]
            else:
                new["metadata"].pop(field, None)

    def _bump_generation(self, new: JSON, old: JSON) -> None:
        if not self.tracks_generation:
            new["metadata"].pop("generation", None)
            return
        generation = old["metadata"].get("generation", 1)
        if spec_of(new) != spec_of(old):
            generation += 1
        new["metadata"]["generation"] = generation

    def validate_status_update(self, new: JSON, old: JSON) -> list[FieldError]:
        """A status write: the spec was just reset from the stored object, so only metadata is checked
        (kube's status strategies validate metadata and status alone)."""
        return validation.validate_metadata_update(new, old)

    def validate_update(self, new: JSON, old: JSON) -> list[FieldError]:
        if self.resource.custom:
            errors = validation.validate_metadata_update(new, old)
            return errors + crdschema.validate(new, self.resource.schema or {})
        return validation.validate_update(self.resource.group, self.resource.kind, new, old)

    # -- delete ------------------------------------------------------------------------------------------
    def graceful_delete_seconds(self, obj: JSON, requested: int | None) -> int:
        """Seconds to wait before the object may go; 0 removes it now (most kinds)."""
        return 0

    def default_propagation(self) -> str:
        return "Background"
