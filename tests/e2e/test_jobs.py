"""Jobs and CronJobs on simulated nodes, driven by the real kubectl.

Simulated containers run for ``sim.nanokube.io/run-seconds`` and exit with ``sim.nanokube.io/exit-code``
(annotations on the pod template). Every blocking kubectl call carries its own ``--timeout``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .cluster import Cluster, unique


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("nanokube-jobs"))
    c.start("--sim-nodes", "2")
    yield c
    c.stop()


@pytest.fixture
def ns(sim: Cluster) -> Iterator[str]:
    name = unique("jobs")
    sim.kubectl("create", "namespace", name)
    yield name
    sim.kubectl("delete", "namespace", name, "--wait=false", check=False)


def sim_annotations(run_seconds: float, exit_code: int = 0) -> dict[str, str]:
    return {"sim.nanokube.io/run-seconds": str(run_seconds), "sim.nanokube.io/exit-code": str(exit_code)}


def job(name: str, *, run_seconds: float = 1, exit_code: int = 0, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {**spec, "template": {
            "metadata": {"annotations": sim_annotations(run_seconds, exit_code)},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}},
    }


def apply(sim: Cluster, ns: str, obj: dict[str, Any]) -> None:
    sim.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))


def get_json(sim: Cluster, ns: str, *what: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(sim.kubectl("get", "-n", ns, *what, "-o", "json").stdout)
    return result


def table(sim: Cluster, ns: str, *what: str) -> list[list[str]]:
    out = sim.kubectl("get", "-n", ns, *what).stdout
    return [line.split() for line in out.strip().splitlines()]


def test_kubectl_create_job_runs_to_completion(sim: Cluster, ns: str) -> None:
    # `kubectl create job` cannot set annotations: render it, add the simulation's, then create.
    rendered = json.loads(sim.kubectl("create", "job", "hello", "--image=busybox", "--dry-run=client", "-o", "json",
                                      "--", "echo", "hi").stdout)
    rendered["spec"]["template"].setdefault("metadata", {})["annotations"] = sim_annotations(1)
    sim.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(rendered))
    sim.kubectl("wait", "-n", ns, "--for=condition=complete", "job/hello", "--timeout=60s")
    header, row = table(sim, ns, "jobs")
    assert header[:3] == ["NAME", "STATUS", "COMPLETIONS"]
    assert row[:3] == ["hello", "Complete", "1/1"]
    described = sim.kubectl("describe", "-n", ns, "job/hello").stdout
    assert "SuccessfulCreate" in described and "Completed" in described


def test_completions_and_parallelism(sim: Cluster, ns: str) -> None:
    apply(sim, ns, job("batch", completions=4, parallelism=2, run_seconds=1))
    sim.kubectl("wait", "-n", ns, "--for=condition=complete", "job/batch", "--timeout=90s")
    obj = get_json(sim, ns, "job/batch")
    assert obj["status"]["succeeded"] == 4
    assert [c["type"] for c in obj["status"]["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    pods = get_json(sim, ns, "pods", "-l", "batch.kubernetes.io/job-name=batch")["items"]
    assert len(pods) == 4 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert all(not p["metadata"].get("finalizers") for p in pods)
    assert table(sim, ns, "jobs")[1][:3] == ["batch", "Complete", "4/4"]


def test_indexed_job(sim: Cluster, ns: str) -> None:
    apply(sim, ns, job("idx", completions=3, parallelism=3, completionMode="Indexed", run_seconds=1))
    sim.kubectl("wait", "-n", ns, "--for=condition=complete", "job/idx", "--timeout=60s")
    assert get_json(sim, ns, "job/idx")["status"]["completedIndexes"] == "0-2"
    pods = get_json(sim, ns, "pods", "-l", "batch.kubernetes.io/job-name=idx")["items"]
    indexes = sorted(p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] for p in pods)
    assert indexes == ["0", "1", "2"]


def test_failing_job_hits_its_backoff_limit(sim: Cluster, ns: str) -> None:
    # Two failures with one back-off of 10 s between them.
    apply(sim, ns, job("doomed", backoffLimit=1, run_seconds=0, exit_code=3))
    sim.kubectl("wait", "-n", ns, "--for=condition=failed", "job/doomed", "--timeout=90s")
    obj = get_json(sim, ns, "job/doomed")
    failed = next(c for c in obj["status"]["conditions"] if c["type"] == "Failed")
    assert (failed["reason"], failed["message"]) == ("BackoffLimitExceeded",
                                                     "Job has reached the specified backoff limit")
    assert obj["status"]["failed"] == 2
    assert table(sim, ns, "jobs")[1][:3] == ["doomed", "Failed", "0/1"]
    events = sim.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=doomed").stdout
    assert "BackoffLimitExceeded" in events


def test_job_from_cronjob(sim: Cluster, ns: str) -> None:
    sim.kubectl("create", "cronjob", "nightly", "-n", ns, "--image=busybox", "--schedule=0 3 * * *")
    sim.kubectl("create", "job", "nightly-now", "-n", ns, "--from=cronjob/nightly")
    made = get_json(sim, ns, "job/nightly-now")
    assert made["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    owner = made["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("CronJob", "nightly")
    pods = get_json(sim, ns, "pods", "-l", "batch.kubernetes.io/job-name=nightly-now")["items"]
    deadline = time.monotonic() + 30
    while not pods and time.monotonic() < deadline:
        time.sleep(0.5)
        pods = get_json(sim, ns, "pods", "-l", "batch.kubernetes.io/job-name=nightly-now")["items"]
    assert pods, "the Job made from the CronJob got no Pod"


def test_cronjob_fires(sim: Cluster, ns: str) -> None:
    cron = {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "minutely"},
        "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": job("x", run_seconds=1)["spec"]}},
    }
    apply(sim, ns, cron)
    deadline = time.monotonic() + 75  # the next minute boundary, then the Job's one second
    made: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        made = get_json(sim, ns, "jobs")["items"]
        if made and any(c.get("type") == "Complete" for c in (made[0].get("status") or {}).get("conditions") or []):
            break
        time.sleep(1)
    assert made, "the CronJob made no Job within a minute"
    name = made[0]["metadata"]["name"]
    assert name.startswith("minutely-") and name.removeprefix("minutely-").isdigit()
    assert "batch.kubernetes.io/cronjob-scheduled-timestamp" in made[0]["metadata"]["annotations"]
    status = get_json(sim, ns, "cronjob/minutely")["status"]
    assert status.get("lastScheduleTime")
    header, row = table(sim, ns, "cronjobs")
    assert header[:2] == ["NAME", "SCHEDULE"] and row[0] == "minutely"
