"""Printers for batch/v1: Job and CronJob.

A Job's STATUS comes from its conditions in a fixed precedence (Complete, Failed, Terminating while deleted,
Suspended, FailureTarget, else Running). COMPLETIONS is ``succeeded/completions``; a Job without a completion
count reads ``n/1``, or ``n/1 of P`` when it runs P pods in parallel (a work queue). DURATION runs from
``startTime`` to ``completionTime``, or to now while the Job is still going, and is empty before it starts.
A CronJob's SUSPEND is the string "True"/"False" (``<unset>`` when absent) although its column says boolean,
exactly as kube sends it.
"""

from __future__ import annotations

from typing import Any

from nanokube.api.tables.common import (
    AGE,
    CONTAINERS,
    IMAGES,
    JSON,
    NAME,
    NONE,
    Column,
    Context,
    Printer,
    age,
    container_cells,
    dig,
    first_true,
    format_selector,
    go_bool,
    human_duration,
    items,
    name_of,
    number,
    parse_time,
    since,
    template_containers,
    text,
    wide,
)

_BATCH = "io.k8s.api.batch.v1."


def job_status(job: JSON) -> str:
    conditions = items(job, "status", "conditions")
    if first_true(conditions, "Complete"):
        return "Complete"
    if first_true(conditions, "Failed"):
        return "Failed"
    if dig(job, "metadata", "deletionTimestamp") is not None:
        return "Terminating"
    if first_true(conditions, "Suspended"):
        return "Suspended"
    if first_true(conditions, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def job_completions(job: JSON) -> str:
    succeeded = number(job, "status", "succeeded")
    completions = dig(job, "spec", "completions")
    if isinstance(completions, int) and not isinstance(completions, bool):
        return f"{succeeded}/{completions}"
    parallelism = number(job, "spec", "parallelism")
    if parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def job_duration(job: JSON, ctx: Context) -> str:
    start = parse_time(dig(job, "status", "startTime"))
    if start is None:
        return ""
    end = parse_time(dig(job, "status", "completionTime"))
    return human_duration((end or ctx.now) - start)


def _job_cells(job: JSON, ctx: Context) -> list[Any]:
    return [
        name_of(job), job_status(job), job_completions(job), job_duration(job, ctx), age(job, ctx),
        *container_cells(template_containers(job)), format_selector(dig(job, "spec", "selector")),
    ]


JOB = Printer((
    NAME,
    Column("Status", doc="Status of the job."),
    Column("Completions", doc=(_BATCH + "JobStatus", "succeeded")),
    Column("Duration", doc="Time required to complete the job."),
    AGE, CONTAINERS, IMAGES,
    wide("Selector", (_BATCH + "JobSpec", "selector")),
), _job_cells)


def _cron_job_cells(cron: JSON, ctx: Context) -> list[Any]:
    last = dig(cron, "status", "lastScheduleTime")
    job_spec = dig(cron, "spec", "jobTemplate", "spec")
    return [
        name_of(cron), text(cron, "spec", "schedule"), text(cron, "spec", "timeZone") or NONE,
        go_bool(dig(cron, "spec", "suspend")), len(items(cron, "status", "active")),
        NONE if last is None else since(last, ctx.now), age(cron, ctx),
        *container_cells(items(job_spec, "template", "spec", "containers")),
        format_selector(dig(job_spec, "selector")),
    ]


CRON_JOB = Printer((
    NAME,
    Column("Schedule", doc=(_BATCH + "CronJobSpec", "schedule")),
    Column("Timezone", doc=(_BATCH + "CronJobSpec", "timeZone")),
    Column("Suspend", "boolean", (_BATCH + "CronJobSpec", "suspend")),
    Column("Active", "integer", (_BATCH + "CronJobStatus", "active")),
    Column("Last Schedule", doc=(_BATCH + "CronJobStatus", "lastScheduleTime")),
    AGE, CONTAINERS, IMAGES,
    wide("Selector", (_BATCH + "JobSpec", "selector")),
), _cron_job_cells)
