"""The StatefulSet controller: ``StatefulSetController(client).run(stop=stop)``.

``revisions`` holds ControllerRevision history helpers any template-versioning controller can use.
"""

from .controller import StatefulSetController

__all__ = ["StatefulSetController"]
