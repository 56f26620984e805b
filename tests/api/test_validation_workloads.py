"""Workload validation: Deployment, ReplicaSet, StatefulSet, DaemonSet, ReplicationController, Job, CronJob."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from validation_helpers import (
    JSON,
    container,
    created,
    cronjob,
    deployment,
    job,
    only,
    template,
    texts,
    updated,
    workload,
)

from nanokube.api import defaults

MISMATCH = 'spec.template.metadata.labels: Invalid value: {"app":"api"}: `selector` does not match template `labels`'


def errors(kind: str, obj: JSON) -> list[str]:
    group = "" if kind == "ReplicationController" else "batch" if kind in ("Job", "CronJob") else "apps"
    return texts(created(group, kind, obj))


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"])
def test_selector_must_match_template_labels(kind: str) -> None:
    body = workload(kind)
    assert errors(kind, body) == []
    body["spec"]["template"]["metadata"]["labels"] = {"app": "api"}
    assert errors(kind, body) == [MISMATCH]


@pytest.mark.parametrize(("kind", "noun"), [("Deployment", "deployment"), ("ReplicaSet", "deployment"),
                                            ("StatefulSet", "statefulset"), ("DaemonSet", "daemonset")])
def test_selector_required_and_not_empty(kind: str, noun: str) -> None:
    body = workload(kind, selector={})
    assert errors(kind, body) == [f"spec.selector: Invalid value: {{}}: empty selector is invalid for {noun}"]
    del body["spec"]["selector"]
    listed = errors(kind, body)
    if kind == "DaemonSet":  # kube: a missing DaemonSet selector selects nothing, so only the mismatch is reported
        assert listed == [MISMATCH.replace('{"app":"api"}', '{"app":"web"}')]
    else:
        assert listed[0] == "spec.selector: Required value"


def test_selector_expressions_are_validated() -> None:
    body = deployment(selector={"matchExpressions": [{"key": "app", "operator": "In"}]})
    assert errors("Deployment", body)[0] == (
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or "
        "'NotIn'")
    body = deployment(selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]})
    assert errors("Deployment", body) == []


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet"])
def test_replicas_non_negative(kind: str) -> None:
    assert errors(kind, workload(kind, replicas=-1)) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0"]
    assert errors(kind, workload(kind, replicas=0)) == []


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"])
def test_template_must_restart_always(kind: str) -> None:
    body = workload(kind, template=template(restartPolicy="Never"))
    assert errors(kind, body) == ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
                                  '"Always"']


def test_template_pod_spec_is_validated_with_template_paths() -> None:
    body = deployment(template=template(containers=[container(image="")]))
    assert errors("Deployment", body) == ["spec.template.spec.containers[0].image: Required value"]
    body = deployment(template=template(activeDeadlineSeconds=30))
    assert errors("Deployment", body) == [
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"]


def test_deployment_strategy() -> None:
    both_zero = deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}})
    assert errors("Deployment", both_zero) == [
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"]
    recreate = deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})
    assert errors("Deployment", recreate) == [
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]
    bad_percent = deployment(strategy={"rollingUpdate": {"maxSurge": "lots", "maxUnavailable": "150%"}})
    assert errors("Deployment", bad_percent) == [
        "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"lots\": a valid percent string must be a numeric "
        "string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%',
    ]
    unknown = deployment(strategy={"type": "BlueGreen"})
    assert errors("Deployment", unknown) == [
        'spec.strategy: Unsupported value: {"type":"BlueGreen"}: supported values: "Recreate", "RollingUpdate"']
    assert errors("Deployment", deployment(strategy={"type": "Recreate"})) == []
    assert errors("Deployment", deployment(strategy={"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})) == []


def test_deployment_progress_deadline() -> None:
    body = deployment(minReadySeconds=600, progressDeadlineSeconds=600)
    assert errors("Deployment", body) == [
        "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"]
    assert errors("Deployment", deployment(minReadySeconds=10)) == []


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
def test_selector_is_immutable(kind: str) -> None:
    old = workload(kind)
    new = workload(kind, selector={"matchLabels": {"app": "web", "v": "2"}},
                   template=template({"app": "web", "v": "2"}))
    assert texts(updated("apps", kind, new, old)) == [
        'spec.selector: Invalid value: {"matchLabels":{"app":"web","v":"2"}}: field is immutable']
    scaled = workload(kind, replicas=5, template=template({"app": "web", "extra": "x"}))
    assert updated("apps", kind, scaled, old) == []


def test_statefulset_forbidden_updates() -> None:
    old = workload("StatefulSet", serviceName="db")
    ok = workload("StatefulSet", serviceName="db", replicas=5, template=template(containers=[container(image="x")]))
    assert updated("apps", "StatefulSet", ok, old) == []
    renamed = workload("StatefulSet", serviceName="other")
    err = only(updated("apps", "StatefulSet", renamed, old))
    assert err.message_with_field() == (
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")


def test_statefulset_specific_rules() -> None:
    body = workload("StatefulSet", podManagementPolicy="Random",
                    updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": -1}})
    assert errors("StatefulSet", body) == [
        "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
        "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0",
    ]
    on_delete = workload("StatefulSet", updateStrategy={"type": "OnDelete", "rollingUpdate": {"partition": 1}})
    assert errors("StatefulSet", on_delete) == [
        'spec.updateStrategy.rollingUpdate: Invalid value: {"partition":1}: only allowed for updateStrategy '
        "'RollingUpdate'"]


def test_daemonset_rolling_update() -> None:
    body = workload("DaemonSet", updateStrategy={"type": "RollingUpdate",
                                                 "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}})
    assert errors("DaemonSet", body) == [
        "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero"]
    body["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": 0}
    assert errors("DaemonSet", body) == [
        "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"]
    body["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": "10%"}
    assert errors("DaemonSet", body) == []


def rc(**spec: Any) -> JSON:
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc", "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"app": "web"}, "template": template(), **spec}}


def test_replication_controller() -> None:
    assert errors("ReplicationController", rc()) == []
    assert errors("ReplicationController", rc(template=template({"app": "api"}))) == [MISMATCH]
    assert errors("ReplicationController", rc(replicas=-2)) == [
        "spec.replicas: Invalid value: -2: must be greater than or equal to 0"]


# -- Jobs ----------------------------------------------------------------------------------------------------
def test_job_is_valid_after_defaulting() -> None:
    assert errors("Job", job()) == []


def test_job_template_restart_policy() -> None:
    body = job()
    body["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert errors("Job", body) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"']
    del body["spec"]["template"]["spec"]["restartPolicy"]  # defaults to Always: still invalid
    assert len(errors("Job", body)) == 1


def test_job_counts() -> None:
    assert errors("Job", job(parallelism=-1, completions=-2, backoffLimit=-3)) == [
        "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
        "spec.completions: Invalid value: -2: must be greater than or equal to 0",
        "spec.backoffLimit: Invalid value: -3: must be greater than or equal to 0",
    ]
    assert errors("Job", job(completionMode="Indexed", completions=None, parallelism=2)) == [
        "spec.completions: Required value: when completion mode is Indexed"]
    assert errors("Job", job(completionMode="Indexed", completions=5, parallelism=2)) == []


def test_job_selector_must_be_generated() -> None:
    body = job(selector={"matchLabels": {"app": "pi"}})
    body["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    assert errors("Job", body) == [
        'spec.selector: Invalid value: {"matchLabels":{"app":"pi","batch.kubernetes.io/controller-uid":"0e1b6a52-1"}}: '
        "`selector` not auto-generated"]
    manual = job(manualSelector=True, selector={"matchLabels": {"app": "pi"}})
    manual["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    assert errors("Job", manual) == []
    manual["spec"]["template"]["metadata"] = {"labels": {"app": "other"}}
    assert errors("Job", manual) == [
        'spec.template.metadata.labels: Invalid value: {"app":"other"}: `selector` does not match template `labels`']


def test_job_generated_labels_must_carry_the_uid() -> None:
    body = job()
    body["spec"]["template"]["metadata"] = {"labels": {"controller-uid": "someone-else"}}
    listed = errors("Job", body)
    assert listed[0].startswith("spec.template.metadata.labels[controller-uid]: Invalid value: {")
    assert listed[0].endswith(": must be '0e1b6a52-1'")


def live_job(**spec: Any) -> JSON:
    obj = job(**spec)
    defaults.apply("batch", "Job", obj)
    return obj


def test_job_template_is_immutable() -> None:
    old = live_job()
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:5.40"
    err = only(updated("batch", "Job", new, old))
    assert (err.kind, err.field) == ("Invalid", "spec.template") and err.detail == "field is immutable"
    new = copy.deepcopy(old)
    new["spec"]["parallelism"] = 4
    new["spec"]["suspend"] = True
    new["spec"]["activeDeadlineSeconds"] = 100
    assert updated("batch", "Job", new, old) == []


def test_job_completions_and_selector_are_immutable() -> None:
    old = live_job()
    new = copy.deepcopy(old)
    new["spec"]["completions"] = 3
    assert texts(updated("batch", "Job", new, old)) == ["spec.completions: Invalid value: 3: field is immutable"]


def test_suspended_unstarted_job_may_change_scheduling_directives() -> None:
    old = live_job(suspend=True)
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    assert updated("batch", "Job", new, old) == []
    old["status"] = {"startTime": "2026-01-01T00:00:00Z"}
    assert [e.field for e in updated("batch", "Job", new, old)] == ["spec.template"]


# -- CronJobs ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("schedule", "message"), [
    ("", "spec.schedule: Required value"),
    ("* * * *", 'spec.schedule: Invalid value: "* * * *": expected exactly 5 fields, found 4: [* * * *]'),
    ("61 * * * *", 'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'),
    ("*/x * * * *", 'spec.schedule: Invalid value: "*/x * * * *": failed to parse int from x: strconv.Atoi: '
                    'parsing "x": invalid syntax'),
    ("@fortnightly", 'spec.schedule: Invalid value: "@fortnightly": unrecognized descriptor: @fortnightly'),
    ("TZ=UTC 0 * * * *", 'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, '
                         "use timeZone field instead"),
])
def test_cronjob_schedule(schedule: str, message: str) -> None:
    assert errors("CronJob", cronjob(schedule=schedule)) == [message]


@pytest.mark.parametrize("schedule", ["*/5 * * * *", "0 0 * * 0", "@hourly", "@every 1h30m", "0 9-17 * JAN-MAR mon,fri",
                                      "5 4 1,15 */2 ?"])
def test_cronjob_valid_schedules(schedule: str) -> None:
    assert errors("CronJob", cronjob(schedule=schedule)) == []


def test_cronjob_spec_rules() -> None:
    body = cronjob(concurrencyPolicy="Sometimes", timeZone="Mars/Olympus", startingDeadlineSeconds=-1)
    assert errors("CronJob", body) == [
        "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0",
        'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus',
        'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"',
    ]
    always = cronjob()
    always["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert errors("CronJob", always) == [
        'spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: '
        '"OnFailure", "Never"']
    selector = cronjob()
    selector["spec"]["jobTemplate"]["spec"]["selector"] = {"matchLabels": {"a": "b"}}
    assert errors("CronJob", selector) == [
        'spec.jobTemplate.spec.selector: Invalid value: {"matchLabels":{"a":"b"}}: `selector` will be auto-generated']
    long_name = cronjob()
    long_name["metadata"]["name"] = "n" * 53
    assert errors("CronJob", long_name) == [f'metadata.name: Invalid value: "{"n" * 53}": must be no more than 52 '
                                            "characters"]
    assert errors("CronJob", cronjob(timeZone="Europe/Paris")) == []
