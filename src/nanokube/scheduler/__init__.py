"""The scheduler: places pods on nodes through a framework of small plugins over a vectorised node table.

Run it with ``await Scheduler(client, SchedulerSettings()).run(stop=stop)``; see ``scheduler.py``.
"""

from .plugins import ProfileOptions
from .scheduler import Scheduler, SchedulerSettings

__all__ = ["ProfileOptions", "Scheduler", "SchedulerSettings"]
