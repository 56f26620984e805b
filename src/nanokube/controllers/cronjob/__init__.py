"""CronJobs: Jobs made on a cron schedule."""

from .controller import CronJobController
from .schedule import Schedule, ScheduleError, parse_schedule

__all__ = ["CronJobController", "Schedule", "ScheduleError", "parse_schedule"]
