"""batch/v1 defaults: Job (``SetDefaults_Job`` plus the selector the Job strategy generates) and CronJob.

A Job without ``manualSelector: true`` gets ``spec.selector.matchLabels`` =
``{batch.kubernetes.io/controller-uid: <uid>}`` and its pod template gets that label, ``batch.kubernetes.io/
job-name`` and the legacy ``controller-uid``/``job-name`` labels. This needs ``metadata.uid``, which the
server assigns before defaulting. As on a real cluster the Job's own labels, when it has none, become its
template's labels, generated ones included. A CronJob's job template gets pod-template defaults only.
"""

from __future__ import annotations

from .podspec import JSON, dicts, ensure, pod_template, sub

MAX_INT32 = 2**31 - 1
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"


def job(obj: JSON) -> None:
    spec = ensure(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    failure_policy = sub(spec, "podFailurePolicy")
    for rule in dicts((failure_policy or {}).get("rules")):
        for pattern in dicts(rule.get("onPodConditions")):
            if not pattern.get("status"):
                pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if failure_policy is not None else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False
    template = ensure(spec, "template")
    pod_template(template)
    if spec["manualSelector"] is not True:
        _generate_selector(obj, spec, template)
    labels = (sub(template, "metadata") or {}).get("labels")
    meta = ensure(obj, "metadata")
    if isinstance(labels, dict) and not meta.get("labels"):
        meta["labels"] = dict(labels)


def _generate_selector(obj: JSON, spec: JSON, template: JSON) -> None:
    """The Job strategy's ``generateSelector``: labels unique to this Job, and a selector on its uid."""
    meta = ensure(obj, "metadata")
    uid, name = meta.get("uid"), meta.get("name")
    if not uid:
        return
    labels = ensure(ensure(template, "metadata"), "labels")
    for label in ("job-name", JOB_NAME):
        if label not in labels and name:
            labels[label] = name
    for label in ("controller-uid", CONTROLLER_UID):
        labels.setdefault(label, uid)
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        selector = spec["selector"] = {}
    ensure(selector, "matchLabels").setdefault(CONTROLLER_UID, uid)


def cron_job(obj: JSON) -> None:
    spec = ensure(obj, "spec")
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_spec = sub(ensure(spec, "jobTemplate"), "spec")
    if job_spec is not None:
        pod_template(job_spec.get("template"))
