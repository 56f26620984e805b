"""Jobs and CronJobs (``pkg/apis/batch/validation``).

A Job's pods must restart ``OnFailure`` or ``Never``; unless ``manualSelector`` is set, its selector and
template labels must be the ones the server generated from the Job's uid. Once created, a Job's selector,
completions (except scaling an Indexed job elastically), completion mode and pod template are immutable —
the template only changes while the Job is suspended and has never started. CronJobs need a parsable
schedule and a name of at most 52 characters (the controller appends ``-<timestamp>``).
"""

from __future__ import annotations

import copy
import zoneinfo
from typing import Any

from . import cron
from .field import (
    Errors,
    as_dict,
    as_int,
    as_str,
    child,
    forbidden,
    immutable,
    invalid,
    key,
    labels_value,
    nonnegative,
    not_supported,
    required,
)
from .meta import name_is_dns_label, name_is_dns_subdomain, validate_object_meta, validate_object_meta_update
from .podspec import validate_pod_template_spec
from .selectors import matches, usable, validate_label_selector

CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"
MAX_INDEXED = 100000


def _has_label(labels: dict[str, Any], label: str, expected: str) -> Errors:
    path = key("spec.template.metadata.labels", label)
    if label not in labels:
        return [required(path, f"must be '{expected}'")]
    if labels[label] != expected:
        return [invalid(path, labels_value(labels), f"must be '{expected}'")]
    return []


def _generated_selector(job: dict[str, Any]) -> Errors:
    spec = as_dict(job.get("spec"))
    labels = as_dict(as_dict(as_dict(spec.get("template")).get("metadata")).get("labels"))
    if spec.get("manualSelector") is True or not labels:
        return []
    meta = as_dict(job.get("metadata"))
    uid, name = as_str(meta.get("uid")), as_str(meta.get("name"))
    errs = _has_label(labels, LEGACY_CONTROLLER_UID, uid) + _has_label(labels, LEGACY_JOB_NAME, name)
    errs += _has_label(labels, CONTROLLER_UID, uid) + _has_label(labels, JOB_NAME, name)
    selector = spec.get("selector")
    if selector is not None and not matches(selector, {CONTROLLER_UID: uid, JOB_NAME: name}):
        errs.append(invalid("spec.selector", selector, "`selector` not auto-generated"))
    return errs


def _job_spec(spec: dict[str, Any], path: str) -> Errors:
    """``validateJobSpec``: counts, completion mode, replacement policy and the pod template."""
    errs: Errors = []
    for field in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished",
                  "backoffLimitPerIndex", "maxFailedIndexes"):
        errs.extend(nonnegative(child(path, field), spec.get(field)))
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        errs.append(not_supported(child(path, "completionMode"), mode, ["NonIndexed", "Indexed"]))
    if mode == "Indexed":
        errs.extend(_indexed(spec, path))
    elif spec.get("backoffLimitPerIndex") is not None:
        errs.append(forbidden(child(path, "backoffLimitPerIndex"), "requires indexed completion mode"))
    failure_policy = spec.get("podFailurePolicy")
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        allowed = ["Failed"] if failure_policy is not None else ["TerminatingOrFailed", "Failed"]
        if replacement not in allowed:
            errs.append(not_supported(child(path, "podReplacementPolicy"), replacement, allowed))
    template = as_dict(spec.get("template"))
    errs.extend(validate_pod_template_spec(template, child(path, "template")))
    policy = as_dict(template.get("spec")).get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        errs.append(not_supported(child(path, "template", "spec", "restartPolicy"), policy or "",
                                  ["OnFailure", "Never"]))
    elif failure_policy is not None and policy != "Never":
        errs.append(invalid(child(path, "template", "spec", "restartPolicy"), policy,
                            'only "Never" is supported when podFailurePolicy is specified'))
    return errs


def _indexed(spec: dict[str, Any], path: str) -> Errors:
    errs: Errors = []
    completions, parallelism = as_int(spec.get("completions")), as_int(spec.get("parallelism"))
    if spec.get("completions") is None:
        errs.append(required(child(path, "completions"), "when completion mode is Indexed"))
    if parallelism is not None and parallelism > MAX_INDEXED:
        errs.append(invalid(child(path, "parallelism"), parallelism,
                            f"must be less than or equal to {MAX_INDEXED} when completion mode is Indexed"))
    if completions is not None and completions > MAX_INDEXED:
        errs.append(invalid(child(path, "completions"), completions,
                            f"must be less than or equal to {MAX_INDEXED} when completion mode is Indexed"))
    return errs


def _job_selector(spec: dict[str, Any]) -> Errors:
    selector = spec.get("selector")
    if selector is None:
        errs = [required("spec.selector")]
    else:
        errs = validate_label_selector(selector, "spec.selector")
    labels = as_dict(as_dict(as_dict(spec.get("template")).get("metadata")).get("labels"))
    if (selector is None or usable(selector)) and not (selector is not None and matches(selector, labels)):
        errs.append(invalid("spec.template.metadata.labels", labels_value(labels),
                            "`selector` does not match template `labels`"))
    return errs


def job_create(job: dict[str, Any]) -> Errors:
    spec = as_dict(job.get("spec"))
    errs = validate_object_meta(job, True, name_is_dns_subdomain)
    errs.extend(_generated_selector(job))
    errs.extend(_job_spec(spec, "spec"))
    errs.extend(_job_selector(spec))
    completions = as_int(spec.get("completions"))
    name = as_str(as_dict(job.get("metadata")).get("name"))
    if spec.get("completionMode") == "Indexed" and completions and name:
        hostname = f"{name}-{completions - 1}"
        if name_is_dns_label(hostname, False):
            errs.append(invalid("metadata.name", name, "will not able to create pod with invalid DNS label: "
                                + hostname))
    return errs


_SCHEDULING_FIELDS = ("nodeSelector", "tolerations", "affinity", "schedulingGates")


def job_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = validate_object_meta_update(new, old) + job_create(new)
    new_spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    elastic = new_spec.get("completionMode") == "Indexed" and \
        new_spec.get("completions") == new_spec.get("parallelism") != old_spec.get("completions")
    if not elastic:
        errs.extend(immutable("spec.completions", new_spec.get("completions"), old_spec.get("completions")))
    errs.extend(immutable("spec.selector", new_spec.get("selector"), old_spec.get("selector")))
    errs.extend(_template_update(new_spec, old_spec, as_dict(old.get("status"))))
    for field in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
        errs.extend(immutable(f"spec.{field}", new_spec.get(field), old_spec.get(field)))
    return errs


def _template_update(new: dict[str, Any], old: dict[str, Any], old_status: dict[str, Any]) -> Errors:
    new_tmpl, old_tmpl = new.get("template"), old.get("template")
    if new_tmpl == old_tmpl:
        return []
    if old.get("suspend") is True and not old_status.get("startTime"):
        new_cmp, old_cmp = copy.deepcopy(as_dict(new_tmpl)), copy.deepcopy(as_dict(old_tmpl))
        for tmpl in (new_cmp, old_cmp):
            as_dict(tmpl.get("metadata")).pop("labels", None)
            as_dict(tmpl.get("metadata")).pop("annotations", None)
            for field in _SCHEDULING_FIELDS:
                as_dict(tmpl.get("spec")).pop(field, None)
        if new_cmp == old_cmp:
            return []
    return [invalid("spec.template", new_tmpl, "field is immutable")]


# -- CronJob -------------------------------------------------------------------------------------------------
def _cronjob_spec(spec: dict[str, Any], old: dict[str, Any] | None) -> Errors:
    errs: Errors = []
    schedule = as_str(spec.get("schedule"))
    time_zone = spec.get("timeZone")
    if not schedule:
        errs.append(required("spec.schedule"))
    else:
        message = cron.parse_error(schedule)
        if message:
            errs.append(invalid("spec.schedule", schedule, message))
        allow_tz = old is not None and "TZ" in as_str(old.get("schedule"))
        if allow_tz and "TZ" in schedule and time_zone is not None:
            errs.append(invalid("spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in "
                                "schedule"))
        elif not allow_tz and "TZ" in schedule:
            errs.append(invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone "
                                "field instead"))
    errs.extend(nonnegative("spec.startingDeadlineSeconds", spec.get("startingDeadlineSeconds")))
    if old is None or old.get("timeZone") != time_zone:
        errs.extend(_time_zone(time_zone))
    policy = spec.get("concurrencyPolicy")
    if not policy:
        errs.append(required("spec.concurrencyPolicy"))
    elif policy not in ("Allow", "Forbid", "Replace"):
        errs.append(not_supported("spec.concurrencyPolicy", policy, ["Allow", "Forbid", "Replace"]))
    template_spec = as_dict(as_dict(spec.get("jobTemplate")).get("spec"))
    errs.extend(_job_spec(template_spec, "spec.jobTemplate.spec"))
    if template_spec.get("selector") is not None:
        errs.append(invalid("spec.jobTemplate.spec.selector", template_spec["selector"],
                            "`selector` will be auto-generated"))
    if template_spec.get("manualSelector") is True:
        errs.append(not_supported("spec.jobTemplate.spec.manualSelector", True, ["nil", "false"]))
    for field in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs.extend(nonnegative(f"spec.{field}", spec.get(field)))
    return errs


def _time_zone(time_zone: Any) -> Errors:
    if time_zone is None:
        return []
    name = as_str(time_zone)
    if not name:
        return [invalid("spec.timeZone", time_zone, "timeZone must be nil or non-empty string")]
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [invalid("spec.timeZone", name, f"unknown time zone {name}")]
    return []


def cronjob_create(cj: dict[str, Any]) -> Errors:
    errs = validate_object_meta(cj, True, name_is_dns_subdomain)
    errs.extend(_cronjob_spec(as_dict(cj.get("spec")), None))
    name = as_str(as_dict(cj.get("metadata")).get("name"))
    if len(name) > 52:
        errs.append(invalid("metadata.name", name, "must be no more than 52 characters"))
    return errs


def cronjob_update(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errs = validate_object_meta_update(new, old)
    return errs + _cronjob_spec(as_dict(new.get("spec")), as_dict(old.get("spec")))
