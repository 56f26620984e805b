"""Jobs: the Job controller (Pods run to completion) and the TTL-after-finished controller."""

from .controller import JobController
from .state import JobSettings
from .ttl import TTLAfterFinishedController

__all__ = ["JobController", "JobSettings", "TTLAfterFinishedController"]
