"""Deployments with the real kubectl on simulated nodes: ``create deployment``, ``rollout status``, ``set image``,
``rollout history``, ``rollout undo``, ``scale``, ``rollout restart``, ``rollout pause|resume``, a progress
deadline that makes ``rollout status`` fail, and a bare ReplicaSet.

These need the scheduler and simulated nodes running inside ``nanokube up`` (``--sim-nodes``), so that pods
are placed and become Ready; every ``rollout status`` carries its own ``--timeout``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial

from .cluster import Cluster, eventually

STATUS_TIMEOUT = "--timeout=90s"


_eventually = partial(eventually, timeout=30.0, interval=0.2)


def _json(cluster: Cluster, namespace: str, *args: str) -> dict:
    return json.loads(cluster.kubectl("-n", namespace, "get", *args, "-o", "json").stdout)


def _replicasets(cluster: Cluster, namespace: str, app: str = "web") -> list[dict]:
    return list(_json(cluster, namespace, "replicasets", "-l", f"app={app}")["items"])


def _rollout_status(cluster: Cluster, namespace: str, name: str = "web") -> str:
    result = cluster.kubectl("-n", namespace, "rollout", "status", f"deployment/{name}", STATUS_TIMEOUT)
    return result.stdout


def _history(cluster: Cluster, namespace: str) -> list[list[str]]:
    out = cluster.kubectl("-n", namespace, "rollout", "history", "deployment/web").stdout
    # deployment.apps/web
    # REVISION  CHANGE-CAUSE
    # 1         <none>
    return [line.split(None, 1) for line in out.strip().splitlines()[2:]]


def _create(cluster: Cluster, namespace: str, replicas: int = 3, image: str = "nginx:1.25") -> None:
    out = cluster.kubectl("-n", namespace, "create", "deployment", "web", f"--image={image}",
                          f"--replicas={replicas}").stdout
    assert out.strip() == "deployment.apps/web created"


def test_rollout_set_image_history_and_undo(cluster: Cluster, namespace: str) -> None:
    _create(cluster, namespace)
    out = _rollout_status(cluster, namespace)
    assert out.strip().splitlines()[-1] == 'deployment "web" successfully rolled out'
    for line in out.strip().splitlines()[:-1]:
        assert line.startswith(('Waiting for deployment "web" rollout to finish: ',
                                "Waiting for deployment spec update to be observed..."))
    deploy = _json(cluster, namespace, "deployment", "web")
    assert deploy["status"]["readyReplicas"] == deploy["status"]["availableReplicas"] == 3
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    (first,) = _replicasets(cluster, namespace)
    assert first["metadata"]["name"] == f"web-{first['metadata']['labels']['pod-template-hash']}"

    out = cluster.kubectl("-n", namespace, "set", "image", "deployment/web", "nginx=nginx:1.26").stdout
    assert out.strip() == "deployment.apps/web image updated"
    # Annotated after the change, as the docs do: the controller copies it onto the current ReplicaSet.
    cluster.kubectl("-n", namespace, "annotate", "deployment/web", "kubernetes.io/change-cause=to 1.26")
    assert _rollout_status(cluster, namespace).strip().splitlines()[-1] == 'deployment "web" successfully rolled out'
    assert _history(cluster, namespace) == [["1", "<none>"], ["2", "to 1.26"]]
    detail = cluster.kubectl("-n", namespace, "rollout", "history", "deployment/web", "--revision=2").stdout
    assert "deployment.apps/web with revision #2" in detail and "nginx:1.26" in detail

    out = cluster.kubectl("-n", namespace, "rollout", "undo", "deployment/web").stdout
    assert out.strip() == "deployment.apps/web rolled back"
    _rollout_status(cluster, namespace)
    rses = _replicasets(cluster, namespace)
    assert len(rses) == 2, "undo reuses the first ReplicaSet"
    by_name = {r["metadata"]["name"]: r for r in rses}
    back = by_name[first["metadata"]["name"]]
    assert back["spec"]["replicas"] == 3
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    image = cluster.kubectl("-n", namespace, "get", "deployment", "web", "-o",
                            "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert image == "nginx:1.25"
    assert [row[0] for row in _history(cluster, namespace)] == ["2", "3"]
    out = cluster.kubectl("-n", namespace, "rollout", "undo", "deployment/web", "--to-revision=3").stdout
    assert "skipped rollback (current template already matches revision 3)" in out


def test_scale(cluster: Cluster, namespace: str) -> None:
    _create(cluster, namespace, replicas=2)
    _rollout_status(cluster, namespace)
    out = cluster.kubectl("-n", namespace, "scale", "deployment/web", "--replicas=5").stdout
    assert out.strip() == "deployment.apps/web scaled"
    _rollout_status(cluster, namespace)
    ready = cluster.kubectl("-n", namespace, "get", "deployment", "web", "-o",
                            "jsonpath={.status.readyReplicas}").stdout
    assert ready == "5"
    rows = cluster.kubectl("-n", namespace, "get", "rs", "-l", "app=web", "--no-headers").stdout.split()
    assert rows[1:4] == ["5", "5", "5"]  # DESIRED CURRENT READY
    events = cluster.kubectl("-n", namespace, "get", "events", "--field-selector",
                             "involvedObject.kind=Deployment,reason=ScalingReplicaSet", "-o",
                             "jsonpath={.items[*].message}").stdout
    assert "from 2 to 5" in events
    cluster.kubectl("-n", namespace, "scale", "deployment/web", "--replicas=1")
    _rollout_status(cluster, namespace)
    _eventually(lambda: len(_json(cluster, namespace, "pods", "-l", "app=web",
                                  "--field-selector=status.phase=Running")["items"]) == 1, "one pod left")


def test_restart(cluster: Cluster, namespace: str) -> None:
    _create(cluster, namespace, replicas=2)
    _rollout_status(cluster, namespace)
    out = cluster.kubectl("-n", namespace, "rollout", "restart", "deployment/web").stdout
    assert out.strip() == "deployment.apps/web restarted"
    _rollout_status(cluster, namespace)
    rses = _replicasets(cluster, namespace)
    assert sorted(r["spec"]["replicas"] for r in rses) == [0, 2]
    new = next(r for r in rses if r["spec"]["replicas"] == 2)
    assert "kubectl.kubernetes.io/restartedAt" in new["spec"]["template"]["metadata"]["annotations"]


def test_pause_and_resume(cluster: Cluster, namespace: str) -> None:
    _create(cluster, namespace, replicas=2)
    _rollout_status(cluster, namespace)
    assert cluster.kubectl("-n", namespace, "rollout", "pause", "deployment/web").stdout.strip() == \
        "deployment.apps/web paused"
    cluster.kubectl("-n", namespace, "set", "image", "deployment/web", "nginx=nginx:1.26")

    def observed() -> bool:
        d = _json(cluster, namespace, "deployment", "web")
        return bool(d["status"].get("observedGeneration") == d["metadata"]["generation"])

    _eventually(observed, "the paused spec observed")
    assert len(_replicasets(cluster, namespace)) == 1, "a paused deployment does not roll"
    conditions = _json(cluster, namespace, "deployment", "web")["status"]["conditions"]
    progressing = next(c for c in conditions if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("Unknown", "DeploymentPaused")
    assert cluster.kubectl("-n", namespace, "rollout", "resume", "deployment/web").stdout.strip() == \
        "deployment.apps/web resumed"
    _rollout_status(cluster, namespace)
    assert len(_replicasets(cluster, namespace)) == 2
    # kubectl refuses to undo a paused deployment (once there is a revision to go back to).
    cluster.kubectl("-n", namespace, "rollout", "pause", "deployment/web")
    out = cluster.kubectl("-n", namespace, "rollout", "undo", "deployment/web", check=False)
    assert out.returncode != 0 and "you cannot rollback a paused deployment" in out.stderr


def test_progress_deadline_fails_rollout_status(cluster: Cluster, namespace: str) -> None:
    manifest = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "stuck"},
        "spec": {"replicas": 1, "progressDeadlineSeconds": 3, "selector": {"matchLabels": {"app": "stuck"}},
                 "template": {"metadata": {"labels": {"app": "stuck"}}, "spec": {"containers": [{
                     "name": "c", "image": "nginx", "resources": {"requests": {"cpu": "100000"}}}]}}}}
    cluster.kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(manifest))
    result = cluster.kubectl("-n", namespace, "rollout", "status", "deployment/stuck", STATUS_TIMEOUT, check=False)
    assert result.returncode == 1
    assert 'error: deployment "stuck" exceeded its progress deadline' in result.stderr
    conditions = _json(cluster, namespace, "deployment", "stuck")["status"]["conditions"]
    progressing = next(c for c in conditions if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert progressing["message"].endswith("has timed out progressing.")


def test_replicaset_keeps_its_pods(cluster: Cluster, namespace: str) -> None:
    manifest = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "bare"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "bare"}},
                 "template": {"metadata": {"labels": {"app": "bare"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    cluster.kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(manifest))

    def ready(n: int) -> Callable[[], bool]:
        return lambda: _json(cluster, namespace, "rs", "bare")["status"].get("readyReplicas") == n

    _eventually(ready(2), "two ready pods")
    pods = _json(cluster, namespace, "pods", "-l", "app=bare")["items"]
    victim = pods[0]["metadata"]["name"]
    cluster.kubectl("-n", namespace, "delete", "pod", victim, "--wait=false")

    def replaced() -> bool:
        items = _json(cluster, namespace, "pods", "-l", "app=bare")["items"]
        live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        return len(live) == 2 and victim not in {p["metadata"]["name"] for p in live}

    _eventually(replaced, "a replacement pod")
    cluster.kubectl("-n", namespace, "scale", "rs/bare", "--replicas=3")
    _eventually(ready(3), "three ready pods")
