"""DaemonSets: ``deprecated.daemonset.template.generation`` counts template changes, as kube's DaemonSet
strategy keeps it (the controller labels pods with it as ``pod-template-generation``)."""

from __future__ import annotations

from .base import JSON, Strategy

TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


class DaemonSetStrategy(Strategy):
    def prepare_create(self, obj: JSON) -> None:
        super().prepare_create(obj)
        obj["metadata"].setdefault("annotations", {})[TEMPLATE_GENERATION] = "1"

    def prepare_update(self, new: JSON, old: JSON) -> None:
        super().prepare_update(new, old)
        old_value = (old["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION, "1")
        generation = int(old_value) if old_value.isdigit() else 1
        if (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
            generation += 1
        new["metadata"].setdefault("annotations", {})[TEMPLATE_GENERATION] = str(generation)
