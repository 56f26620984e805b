"""Server-side printing: Table envelopes, column sets and the cell rules of kube's printers.go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nanokube.api.errors import BadRequest
from nanokube.api.registry import BUILTIN
from nanokube.api.tables import human_duration, pod_status, since, table_for

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, *, minutes: float = 5, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "7",
            "creationTimestamp": ago(minutes=minutes), "labels": {"app": name}, **extra}


def cells(group: str, kind: str, obj: dict[str, Any], **kw: Any) -> list[Any]:
    row: list[Any] = table_for(group, kind, [obj], now=NOW, **kw)["rows"][0]["cells"]
    return row


def columns(group: str, kind: str, **kw: Any) -> list[tuple[str, str, int]]:
    table = table_for(group, kind, [], now=NOW, **kw)
    return [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]]


# -- ages -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (-1.5, "0s"), (-2, "<invalid>"), (0.5, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (123, "2m3s"),
    (599, "9m59s"), (600, "10m"), (179 * 60 + 59, "179m"), (3 * 3600, "3h"), (3 * 3600 + 240, "3h4m"),
    (8 * 3600 + 59, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (51 * 3600, "2d3h"), (8 * 86400, "8d"),
    (729 * 86400, "729d"), (730 * 86400, "2y"), (733 * 86400, "2y3d"), (9 * 365 * 86400, "9y"),
])
def test_human_duration_matches_apimachinery(seconds: float, text: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == text


def test_since_unknown_and_future() -> None:
    assert since(None, NOW) == "<unknown>"
    assert since("", NOW) == "<unknown>"
    assert since(ago(hours=-1), NOW) == "<invalid>"
    assert since(ago(days=10), NOW) == "10d"


# -- the envelope ---------------------------------------------------------------------------------------------

def _simple_pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta("web"),
            "spec": {"containers": [{"name": "app", "image": "nginx"}]}, "status": {"phase": "Pending"}}


def test_table_envelope_and_partial_object_metadata() -> None:
    pod = _simple_pod()
    table = table_for("", "Pod", [pod], now=NOW)
    assert (table["kind"], table["apiVersion"], table["metadata"]) == ("Table", "meta.k8s.io/v1", {})
    for column in table["columnDefinitions"]:
        assert set(column) == {"name", "type", "format", "description", "priority"}
    row = table["rows"][0]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": pod["metadata"]}
    assert "conditions" not in row


def test_include_object_modes_and_no_headers() -> None:
    pod = _simple_pod()
    assert table_for("", "Pod", [pod], include_object="Object", now=NOW)["rows"][0]["object"] is pod
    assert "object" not in table_for("", "Pod", [pod], include_object="None", now=NOW)["rows"][0]
    assert table_for("", "Pod", [pod], include_object="", now=NOW)["rows"][0]["object"]["kind"] == \
        "PartialObjectMetadata"
    quiet = table_for("", "Pod", [pod], no_headers=True, now=NOW)
    assert "columnDefinitions" not in quiet and len(quiet["rows"]) == 1
    with pytest.raises(BadRequest, match='unrecognized includeObject value: "Everything"'):
        table_for("", "Pod", [pod], include_object="Everything", now=NOW)


def test_column_descriptions_come_from_the_schema() -> None:
    defs = {c["name"]: c for c in table_for("", "Pod", [], now=NOW)["columnDefinitions"]}
    assert defs["Name"]["format"] == "name"
    assert defs["Name"]["description"].startswith("Name must be unique within a namespace.")
    assert defs["Age"]["description"].startswith("CreationTimestamp is a timestamp")
    assert defs["IP"]["description"].startswith("podIP address allocated to the pod")


@pytest.mark.parametrize("resource", [r for r in BUILTIN if r.stored], ids=lambda r: f"{r.group}/{r.kind}")
def test_every_builtin_kind_fills_every_column(resource: Any) -> None:
    obj = {"apiVersion": resource.api_version, "kind": resource.kind, "metadata": meta("x")}
    table = table_for(resource.group, resource.kind, [obj, {}], now=NOW)
    for row in table["rows"]:
        assert len(row["cells"]) == len(table["columnDefinitions"])
        assert all(isinstance(cell, str | int | bool) for cell in row["cells"])


# -- pods -----------------------------------------------------------------------------------------------------

def test_pod_columns() -> None:
    assert columns("", "Pod") == [
        ("Name", "string", 0), ("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "string", 0),
        ("Age", "string", 0), ("IP", "string", 1), ("Node", "string", 1), ("Nominated Node", "string", 1),
        ("Readiness Gates", "string", 1)]


def running(name: str = "app", *, ready: bool = True, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {"name": name, "ready": ready, "restartCount": restarts, "image": "nginx", "imageID": "",
            "started": True, "state": {"running": {"startedAt": ago(minutes=4)}}, **extra}


def waiting(reason: str, name: str = "app", restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "ready": False, "restartCount": restarts, "image": "nginx", "imageID": "",
            "started": False, "state": {"waiting": {"reason": reason}}}


def terminated(name: str = "app", *, exit_code: int = 0, reason: str = "", signal: int = 0) -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": exit_code, "finishedAt": ago(minutes=1)}
    if reason:
        state["reason"] = reason
    if signal:
        state["signal"] = signal
    return {"name": name, "ready": False, "restartCount": 0, "image": "nginx", "imageID": "",
            "started": False, "state": {"terminated": state}}


def pod(phase: str = "Running", statuses: list[Any] | None = None, *, init: list[Any] | None = None,
        init_statuses: list[Any] | None = None, conditions: list[Any] | None = None, containers: int = 1,
        **status: Any) -> dict[str, Any]:
    names = ["app", "side", "third"][:containers]
    spec: dict[str, Any] = {"containers": [{"name": n, "image": "nginx"} for n in names], "nodeName": "node1"}
    if init is not None:
        spec["initContainers"] = init
    st: dict[str, Any] = {"phase": phase, "conditions": conditions or [], **status}
    if statuses is not None:
        st["containerStatuses"] = statuses
    if init_statuses is not None:
        st["initContainerStatuses"] = init_statuses
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta("web"), "spec": spec, "status": st}


READY = [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}]
INIT_PENDING = [{"type": "Initialized", "status": "False"}]
TWO_INITS = [{"name": "setup", "image": "busybox"}, {"name": "migrate", "image": "busybox"}]
SIDECAR = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]


@pytest.mark.parametrize(("obj", "status", "ready"), [
    (pod("Pending"), "Pending", "0/1"),
    (pod("Pending", [waiting("ContainerCreating")]), "ContainerCreating", "0/1"),
    (pod("Pending", [waiting("ErrImagePull")]), "ErrImagePull", "0/1"),
    (pod("Running", [running()], conditions=READY), "Running", "1/1"),
    (pod("Running", [running(ready=False)]), "Running", "0/1"),
    (pod("Running", [waiting("CrashLoopBackOff", restarts=4)]), "CrashLoopBackOff", "0/1"),
    (pod("Succeeded", [terminated(reason="Completed")]), "Completed", "0/1"),
    (pod("Failed", [terminated(exit_code=1, reason="Error")]), "Error", "0/1"),
    (pod("Running", [terminated(exit_code=137, reason="OOMKilled")]), "OOMKilled", "0/1"),
    (pod("Failed", [terminated(exit_code=137, signal=9)]), "Signal:9", "0/1"),
    (pod("Failed", [terminated(exit_code=3)]), "ExitCode:3", "0/1"),
    (pod("Failed", [terminated(reason="Completed")], reason="Evicted"), "Completed", "0/1"),
    (pod("Failed", reason="Evicted"), "Evicted", "0/1"),
    (pod("Pending", [], conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]),
     "SchedulingGated", "0/1"),
    (pod("Pending", [waiting("PodInitializing")], init=TWO_INITS,
         init_statuses=[waiting("PodInitializing", "setup"), waiting("PodInitializing", "migrate")],
         conditions=INIT_PENDING), "Init:0/2", "0/1"),
    (pod("Pending", [waiting("PodInitializing")], init=TWO_INITS,
         init_statuses=[terminated("setup", reason="Completed"), running("migrate", ready=False)],
         conditions=INIT_PENDING), "Init:1/2", "0/1"),
    (pod("Pending", [waiting("PodInitializing")], init=TWO_INITS,
         init_statuses=[waiting("CrashLoopBackOff", "setup"), waiting("PodInitializing", "migrate")],
         conditions=INIT_PENDING), "Init:CrashLoopBackOff", "0/1"),
    (pod("Pending", [], init=TWO_INITS, init_statuses=[terminated("setup", exit_code=1, reason="Error")]),
     "Init:Error", "0/1"),
    (pod("Pending", [], init=TWO_INITS, init_statuses=[terminated("setup", exit_code=2)]), "Init:ExitCode:2", "0/1"),
    (pod("Pending", [], init=TWO_INITS, init_statuses=[terminated("setup", exit_code=1, signal=15)]),
     "Init:Signal:15", "0/1"),
    (pod("Pending", [waiting("PodInitializing")], init=TWO_INITS,
         init_statuses=[terminated("setup", reason="Completed"), terminated("migrate", reason="Completed")],
         conditions=[{"type": "Initialized", "status": "True"}]), "PodInitializing", "0/1"),
    (pod("Running", [running()], init=SIDECAR, init_statuses=[running("proxy")], conditions=READY),
     "Running", "2/2"),
    (pod("Pending", [waiting("PodInitializing")], init=SIDECAR,
         init_statuses=[{**running("proxy"), "started": False}], conditions=INIT_PENDING), "Init:0/1", "0/2"),
    (pod("Running", [running("side"), terminated("app", reason="Completed")], containers=2, conditions=READY),
     "Running", "1/2"),
    (pod("Running", [running("side"), terminated("app", reason="Completed")], containers=2), "NotReady", "1/2"),
])
def test_pod_status_and_ready(obj: dict[str, Any], status: str, ready: str) -> None:
    row = cells("", "Pod", obj)
    assert (row[2], row[1]) == (status, ready)
    assert pod_status(obj) == status


def test_pod_being_deleted() -> None:
    deleting = pod("Running", [running()], conditions=READY)
    deleting["metadata"]["deletionTimestamp"] = ago(seconds=3)
    assert cells("", "Pod", deleting)[2] == "Terminating"
    lost = pod("Running", [running()], reason="NodeLost")
    lost["metadata"]["deletionTimestamp"] = ago(seconds=3)
    assert cells("", "Pod", lost)[2] == "Unknown"
    done = pod("Succeeded", [terminated(reason="Completed")])
    done["metadata"]["deletionTimestamp"] = ago(seconds=3)
    assert cells("", "Pod", done)[2] == "Completed"


def test_pod_restarts_with_last_restart_age() -> None:
    last = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(minutes=5)}}
    older = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(hours=2)}}
    obj = pod("Running", [running(restarts=3, lastState=last), running("side", restarts=2, lastState=older)],
              containers=2, conditions=READY)
    assert cells("", "Pod", obj)[3] == "5 (5m ago)"
    assert cells("", "Pod", pod("Running", [running(restarts=2)]))[3] == "2"
    assert cells("", "Pod", pod("Running", [running()]))[3] == "0"


def test_pod_restarts_of_init_containers() -> None:
    # While initializing, every init container's restarts count; afterwards only the sidecars' do.
    crash = {**waiting("CrashLoopBackOff", "setup", restarts=6)}
    initializing = pod("Pending", [waiting("PodInitializing")], init=TWO_INITS, init_statuses=[crash],
                       conditions=INIT_PENDING)
    assert cells("", "Pod", initializing)[3] == "6"
    done_init = {**terminated("setup", reason="Completed"), "restartCount": 4}
    sidecar = running("proxy", restarts=1, lastState={"terminated": {"exitCode": 1, "finishedAt": ago(minutes=30)}})
    initialized = pod("Running", [running(restarts=2)], init=[TWO_INITS[0], *SIDECAR],
                      init_statuses=[done_init, sidecar], conditions=READY)
    assert cells("", "Pod", initialized)[1:4] == ["2/2", "Running", "3 (30m ago)"]


def test_pod_wide_cells_and_conditions() -> None:
    obj = pod("Running", [running()], conditions=[*READY, {"type": "example.com/lb", "status": "True"}],
              podIPs=[{"ip": "10.42.0.7"}, {"ip": "fd00::7"}], podIP="10.42.0.7", nominatedNodeName="node2")
    obj["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]
    assert cells("", "Pod", obj) == ["web", "1/1", "Running", "0", "5m", "10.42.0.7", "node1", "node2", "1/2"]
    bare = pod("Pending")
    del bare["spec"]["nodeName"]
    assert cells("", "Pod", bare)[5:] == ["<none>", "<none>", "<none>", "<none>"]
    assert cells("", "Pod", pod("Running", podIP="10.42.0.9"))[5] == "10.42.0.9"
    done = table_for("", "Pod", [pod("Succeeded", [terminated(reason="Completed")])], now=NOW)["rows"][0]
    assert done["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                   "message": "The pod has completed successfully."}]


# -- nodes ----------------------------------------------------------------------------------------------------

def node(ready: str | None = "True", *, unschedulable: bool = False, labels: dict[str, str] | None = None,
         info: dict[str, str] | None = None) -> dict[str, Any]:
    conditions = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node1", "creationTimestamp": ago(days=3, hours=4), "labels": labels or {}},
            "spec": {"unschedulable": unschedulable},
            "status": {"conditions": conditions, "nodeInfo": info or {"kubeletVersion": "v1.37.0"},
                       "addresses": [{"type": "Hostname", "address": "node1"},
                                     {"type": "InternalIP", "address": "192.168.1.10"}]}}


def test_node_cells() -> None:
    assert columns("", "Node")[5:] == [("Internal-IP", "string", 1), ("External-IP", "string", 1),
                                       ("OS-Image", "string", 1), ("Kernel-Version", "string", 1),
                                       ("Container-Runtime", "string", 1)]
    labels = {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "",
              "kubernetes.io/role": "edge", "node-role.kubernetes.io/": "x"}
    info = {"kubeletVersion": "v1.37.0", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0",
            "containerRuntimeVersion": "nanokube://0.1.0"}
    assert cells("", "Node", node(labels=labels, info=info)) == [
        "node1", "Ready", "control-plane,edge,worker", "3d4h", "v1.37.0", "192.168.1.10", "<none>",
        "Debian GNU/Linux 12 (bookworm)", "6.1.0", "nanokube://0.1.0"]
    assert cells("", "Node", node("False", unschedulable=True))[1:3] == ["NotReady,SchedulingDisabled", "<none>"]
    assert cells("", "Node", node("Unknown"))[1] == "NotReady"
    assert cells("", "Node", node(None))[1] == "Unknown"
    assert cells("", "Node", node())[7:] == ["<unknown>", "<unknown>", "<unknown>"]


# -- workloads ------------------------------------------------------------------------------------------------

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "log", "image": "fluent"}]}}


def test_deployment_and_replica_set() -> None:
    assert columns("apps", "Deployment") == [
        ("Name", "string", 0), ("Ready", "string", 0), ("Up-to-date", "string", 0), ("Available", "string", 0),
        ("Age", "string", 0), ("Containers", "string", 1), ("Images", "string", 1), ("Selector", "string", 1)]
    deploy = {"metadata": meta("web", minutes=90), "spec": {
        "replicas": 3, "template": TEMPLATE,
        "selector": {"matchLabels": {"app": "web"},
                     "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]}},
              "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert cells("apps", "Deployment", deploy) == [
        "web", "2/3", 3, 2, "90m", "app,log", "nginx:1.27,fluent", "app=web,tier in (a,b)"]
    rs = {"metadata": meta("web-5d4f"), "spec": {"replicas": 3, "template": TEMPLATE, "selector": {}},
          "status": {"replicas": 3, "readyReplicas": 1}}
    assert cells("apps", "ReplicaSet", rs) == ["web-5d4f", 3, 3, 1, "5m", "app,log", "nginx:1.27,fluent", "<none>"]
    deploy["spec"]["selector"] = {}
    assert cells("apps", "Deployment", deploy)[-1] == ""


def test_stateful_and_daemon_sets() -> None:
    sts = {"metadata": meta("db"), "spec": {"replicas": 3, "template": TEMPLATE}, "status": {"readyReplicas": 3}}
    assert cells("apps", "StatefulSet", sts) == ["db", "3/3", "5m", "app,log", "nginx:1.27,fluent"]
    ds_template = {**TEMPLATE, "spec": {**TEMPLATE["spec"], "nodeSelector": {"os": "linux", "arch": "amd64"}}}
    ds = {"metadata": meta("agent"), "spec": {"template": ds_template, "selector": {"matchLabels": {"app": "agent"}}},
          "status": {"desiredNumberScheduled": 4, "currentNumberScheduled": 4, "numberReady": 3,
                     "updatedNumberScheduled": 4, "numberAvailable": 3}}
    assert cells("apps", "DaemonSet", ds) == [
        "agent", 4, 4, 3, 4, 3, "arch=amd64,os=linux", "5m", "app,log", "nginx:1.27,fluent", "app=agent"]


def test_controller_revision() -> None:
    rev = {"metadata": {**meta("agent-7c9"), "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "u", "controller": True}]},
        "revision": 2}
    assert cells("apps", "ControllerRevision", rev) == ["agent-7c9", "daemonset.apps/agent", 2, "5m"]
    rev["metadata"]["ownerReferences"][0]["controller"] = False
    assert cells("apps", "ControllerRevision", rev)[1] == "<none>"


def test_replication_controller() -> None:
    rc = {"metadata": meta("old"), "spec": {"replicas": 2, "selector": {"app": "old"}, "template": TEMPLATE},
          "status": {"replicas": 2, "readyReplicas": 2}}
    assert cells("", "ReplicationController", rc) == ["old", 2, 2, 2, "5m", "app,log", "nginx:1.27,fluent",
                                                      "app=old"]


def job(conditions: list[Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": meta("pi", minutes=20), "spec": {"template": TEMPLATE, **spec,
                                                         "selector": {"matchLabels": {"job": "pi"}}},
            "status": {"succeeded": 1, "startTime": ago(minutes=19), "conditions": conditions or []}}


def test_jobs() -> None:
    assert [c[0] for c in columns("batch", "Job")] == [
        "Name", "Status", "Completions", "Duration", "Age", "Containers", "Images", "Selector"]
    done = job([{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}],
               completions=1)
    done["status"]["completionTime"] = ago(minutes=17, seconds=30)
    assert cells("batch", "Job", done) == ["pi", "Complete", "1/1", "90s", "20m", "app,log", "nginx:1.27,fluent",
                                           "job=pi"]
    assert cells("batch", "Job", job(completions=5))[1:4] == ["Running", "1/5", "19m"]
    assert cells("batch", "Job", job(parallelism=3))[2] == "1/1 of 3"
    assert cells("batch", "Job", job(parallelism=1))[2] == "1/1"
    assert cells("batch", "Job", job([{"type": "Failed", "status": "True"}]))[1] == "Failed"
    assert cells("batch", "Job", job([{"type": "Suspended", "status": "True"}]))[1] == "Suspended"
    assert cells("batch", "Job", job([{"type": "FailureTarget", "status": "True"}]))[1] == "FailureTarget"
    assert cells("batch", "Job", job([{"type": "Complete", "status": "False"}]))[1] == "Running"
    deleting = job()
    deleting["metadata"]["deletionTimestamp"] = ago(seconds=1)
    assert cells("batch", "Job", deleting)[1] == "Terminating"
    fresh = job()
    del fresh["status"]["startTime"]
    assert cells("batch", "Job", fresh)[3] == ""


def test_cron_jobs() -> None:
    assert columns("batch", "CronJob")[1:6] == [("Schedule", "string", 0), ("Timezone", "string", 0),
                                                ("Suspend", "boolean", 0), ("Active", "integer", 0),
                                                ("Last Schedule", "string", 0)]
    cron = {"metadata": meta("nightly", minutes=3 * 24 * 60), "spec": {
        "schedule": "0 3 * * *", "suspend": False, "timeZone": "Europe/Paris",
        "jobTemplate": {"spec": {"template": TEMPLATE}}},
        "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ago(hours=9)}}
    assert cells("batch", "CronJob", cron) == ["nightly", "0 3 * * *", "Europe/Paris", "False", 1, "9h", "3d",
                                               "app,log", "nginx:1.27,fluent", "<none>"]
    del cron["spec"]["suspend"], cron["spec"]["timeZone"], cron["status"]["lastScheduleTime"]
    assert cells("batch", "CronJob", cron)[2:6] == ["<none>", "<unset>", 1, "<none>"]


# -- services and endpoints -----------------------------------------------------------------------------------

def service(kind: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": meta("web"), "spec": {"type": kind, "clusterIP": "10.43.0.12", "clusterIPs": ["10.43.0.12"],
                                              "selector": {"app": "web"}, **spec}, "status": {}}


def test_services() -> None:
    ports = [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 443, "protocol": "TCP", "nodePort": 30443}]
    assert cells("", "Service", service("ClusterIP", ports=[{"port": 80, "protocol": "TCP"},
                                                         {"port": 53, "protocol": "UDP"}])) == [
        "web", "ClusterIP", "10.43.0.12", "<none>", "80/TCP,53/UDP", "5m", "app=web"]
    assert cells("", "Service", service("NodePort", ports=ports))[3:5] == ["<none>", "80:30080/TCP,443:30443/TCP"]
    lb = service("LoadBalancer", ports=ports)
    assert cells("", "Service", lb)[3] == "<pending>"
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"},
                                                 {"ip": "203.0.113.9"}]}}
    assert cells("", "Service", lb)[3] == "203.0.113.9,lb.example.com"
    lb["spec"]["externalIPs"] = ["198.51.100.1"]
    assert cells("", "Service", lb)[3] == "203.0.113.9,lb.example.com,198.51.100.1"
    name = service("ExternalName", externalName="db.example.com", clusterIP="", clusterIPs=[])
    assert cells("", "Service", name)[1:5] == ["ExternalName", "<none>", "db.example.com", "<none>"]
    headless = service("ClusterIP", clusterIP="None", clusterIPs=["None"], selector={})
    assert cells("", "Service", headless)[2] == "None" and cells("", "Service", headless)[6] == "<none>"


def test_endpoints_and_slices() -> None:
    subsets = [{"addresses": [{"ip": f"10.42.0.{i}"} for i in range(1, 4)], "ports": [{"port": 80}, {"port": 81}]}]
    ep = {"metadata": meta("web"), "subsets": subsets}
    assert cells("", "Endpoints", ep)[1] == "10.42.0.1:80,10.42.0.2:80,10.42.0.3:80 + 3 more..."
    ep["subsets"] = [{"addresses": [{"ip": "10.42.0.1"}]}]
    assert cells("", "Endpoints", ep)[1] == "10.42.0.1"
    assert cells("", "Endpoints", {"metadata": meta("none")})[1] == "<none>"
    sl = {"metadata": meta("web-abc"), "addressType": "IPv4",
          "ports": [{"port": 80}, {"name": "metrics"}, {}, {"port": 9}],
          "endpoints": [{"addresses": ["10.42.0.1"]}, {"addresses": ["10.42.0.2", "10.42.0.3", "10.42.0.4"]}]}
    assert cells("discovery.k8s.io", "EndpointSlice", sl) == [
        "web-abc", "IPv4", "80,metrics,* + 1 more...", "10.42.0.1,10.42.0.2,10.42.0.3 + 1 more...", "5m"]
    assert cells("discovery.k8s.io", "EndpointSlice", {"metadata": meta("e"), "addressType": "IPv4"})[2:4] == [
        "<unset>", "<unset>"]


# -- events ---------------------------------------------------------------------------------------------------

def test_core_event() -> None:
    assert columns("", "Event") == [
        ("Last Seen", "string", 0), ("Type", "string", 0), ("Reason", "string", 0), ("Object", "string", 0),
        ("Subobject", "string", 1), ("Source", "string", 1), ("Message", "string", 0), ("First Seen", "string", 1),
        ("Count", "string", 1), ("Name", "string", 1)]
    ev = {"metadata": meta("web.17a"), "type": "Normal", "reason": "Pulled", "message": " Pulled nginx \n",
          "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
          "source": {"component": "kubelet", "host": "node1"}, "count": 4,
          "firstTimestamp": ago(hours=1), "lastTimestamp": ago(seconds=30)}
    assert cells("", "Event", ev) == ["30s", "Normal", "Pulled", "pod/web", "spec.containers{app}",
                                      "kubelet, node1", "Pulled nginx", "60m", 4, "web.17a"]
    fresh = {"metadata": meta("x"), "type": "Warning", "reason": "FailedScheduling", "message": "0/1 nodes",
             "involvedObject": {"kind": "Node"}, "eventTime": ago(minutes=2), "reportingController": "scheduler"}
    assert cells("", "Event", fresh) == ["2m", "Warning", "FailedScheduling", "node", "", "scheduler", "0/1 nodes",
                                         "2m", 1, "x"]


def test_events_k8s_io_event_and_series() -> None:
    ev = {"metadata": meta("web.1"), "type": "Warning", "reason": "BackOff", "note": "Back-off restarting",
          "regarding": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
          "reportingController": "kubelet", "reportingInstance": "node1", "eventTime": ago(minutes=9),
          "series": {"count": 12, "lastObservedTime": ago(seconds=20)}}
    assert cells("events.k8s.io", "Event", ev) == [
        "20s", "Warning", "BackOff", "pod/web", "spec.containers{app}", "kubelet, node1", "Back-off restarting",
        "9m", 12, "web.1"]


# -- configuration, storage and the rest ----------------------------------------------------------------------

def test_small_core_kinds() -> None:
    assert cells("", "Namespace", {"metadata": meta("dev", minutes=600), "status": {"phase": "Active"}}) == [
        "dev", "Active", "10h"]
    assert cells("", "Secret", {"metadata": meta("tls"), "type": "kubernetes.io/tls",
                                "data": {"tls.crt": "", "tls.key": ""}}) == ["tls", "kubernetes.io/tls", 2, "5m"]
    assert cells("", "ConfigMap", {"metadata": meta("cfg"), "data": {"a": "1"}, "binaryData": {"b": ""}}) == [
        "cfg", 2, "5m"]
    assert cells("", "ServiceAccount", {"metadata": meta("default")}) == ["default", 0, "5m"]
    quota = {"metadata": meta("q"), "status": {
        "hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "2Gi", "limits.cpu": "4"},
        "used": {"pods": "3", "requests.cpu": "500m", "limits.cpu": "1"}}}
    assert cells("", "ResourceQuota", quota) == [
        "q", "pods: 3/10, requests.cpu: 500m/2", "limits.cpu: 1/4, limits.memory: 0/2Gi", "5m"]


def test_volumes() -> None:
    pv = {"metadata": {**meta("pv1"), "annotations": {}}, "spec": {
        "capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "local",
        "claimRef": {"namespace": "default", "name": "data"}}, "status": {"phase": "Bound"}}
    assert cells("", "PersistentVolume", pv) == ["pv1", "1Gi", "RWO,RWX", "Retain", "Bound", "default/data", "local",
                                                 "<unset>", "", "5m", "<unset>"]
    pvc = {"metadata": meta("data"), "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                                               "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"},
           "status": {"phase": "Pending"}}
    assert cells("", "PersistentVolumeClaim", pvc) == ["data", "Pending", "", "", "", "local", "<unset>", "5m",
                                                       "Filesystem"]
    pvc["spec"]["volumeName"] = "pv1"
    pvc["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}
    pvc["metadata"]["annotations"] = {"volume.beta.kubernetes.io/storage-class": "legacy"}
    pvc["metadata"]["deletionTimestamp"] = ago(seconds=1)
    assert cells("", "PersistentVolumeClaim", pvc)[1:6] == ["Terminating", "pv1", "1Gi", "RWO", "legacy"]


def test_storage_class_marks_only_the_effective_default() -> None:
    def sc(name: str, days: int, default: bool) -> dict[str, Any]:
        annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
        return {"metadata": {"name": name, "creationTimestamp": ago(days=days), "annotations": annotations},
                "provisioner": "rancher.io/local-path"}
    classes = [sc("old", 9, True), sc("new", 1, True), sc("plain", 1, False)]
    table = table_for("storage.k8s.io", "StorageClass", classes, now=NOW)
    assert [r["cells"][0] for r in table["rows"]] == ["old", "new (default)", "plain"]
    assert table["rows"][1]["cells"][1:] == ["rancher.io/local-path", "Delete", "Immediate", False, "24h"]
    assert cells("storage.k8s.io", "StorageClass", sc("old", 9, True))[0] == "old (default)"


def test_policy_rbac_scheduling_coordination() -> None:
    pdb = {"metadata": meta("web"), "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}}
    assert cells("policy", "PodDisruptionBudget", pdb) == ["web", "50%", "N/A", 1, "5m"]
    pdb["spec"] = {"maxUnavailable": 1}
    assert cells("policy", "PodDisruptionBudget", pdb)[1:3] == ["N/A", "1"]
    rb = {"metadata": meta("edit"), "roleRef": {"kind": "ClusterRole", "name": "edit", "apiGroup": "x"},
          "subjects": [{"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                       {"kind": "Group", "name": "devs"},
                       {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}]}
    assert cells("rbac.authorization.k8s.io", "RoleBinding", rb) == [
        "edit", "ClusterRole/edit", "5m", "alice, bob", "devs", "tools/ci"]
    assert [c[2] for c in columns("rbac.authorization.k8s.io", "ClusterRoleBinding")] == [0, 0, 0, 1, 1, 1]
    pc = {"metadata": meta("high"), "value": 1000, "globalDefault": True, "preemptionPolicy": "Never"}
    assert cells("scheduling.k8s.io", "PriorityClass", pc) == ["high", 1000, True, "5m", "Never"]
    lease = {"metadata": meta("node1"), "spec": {"holderIdentity": "node1"}}
    assert cells("coordination.k8s.io", "Lease", lease) == ["node1", "node1", "5m"]


def test_kinds_without_printer_use_the_default_convertor() -> None:
    for group, kind in [("rbac.authorization.k8s.io", "ClusterRole"), ("", "LimitRange"),
                        ("apiextensions.k8s.io", "CustomResourceDefinition")]:
        assert columns(group, kind) == [("Name", "string", 0), ("Created At", "date", 0)]
    role = {"metadata": {"name": "view", "creationTimestamp": "2026-02-27T08:30:00+00:00"}}
    assert cells("rbac.authorization.k8s.io", "Role", role) == ["view", "2026-02-27T08:30:00Z"]
    assert cells("rbac.authorization.k8s.io", "Role", {"metadata": {"name": "x"}}) == ["x", "0001-01-01T00:00:00Z"]


# -- custom resources -----------------------------------------------------------------------------------------

CRD_COLUMNS = [
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
     "description": "Whether it is ready"},
    {"name": "Size", "type": "number", "jsonPath": ".spec.size", "priority": 1},
    {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
    {"name": "Owner", "type": "string", "jsonPath": ".metadata.labels['example.com/owner']"},
    {"name": "Ports", "type": "string", "jsonPath": ".spec.ports"},
    {"name": "First", "type": "string", "jsonPath": ".spec.ports[0].port"},
    {"name": "Started", "type": "date", "jsonPath": ".status.startedAt"},
]


def widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {**meta("w1"), "labels": {"example.com/owner": "team-a"}},
            "spec": {"replicas": 3, "size": 1.5, "paused": False, "ports": [{"port": 80}], **spec},
            "status": {"conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "False"}],
                       "startedAt": ago(hours=2)}}


def test_custom_resource_printer_columns() -> None:
    table = table_for("example.com", "Widget", [widget()], now=NOW, custom_columns=CRD_COLUMNS)
    defs = table["columnDefinitions"]
    assert [(c["name"], c["type"], c["priority"]) for c in defs] == [
        ("Name", "string", 0), ("Replicas", "integer", 0), ("Ready", "string", 0), ("Size", "number", 1),
        ("Paused", "boolean", 0), ("Owner", "string", 0), ("Ports", "string", 0), ("First", "string", 0),
        ("Started", "date", 0)]
    assert defs[1]["description"] == "Custom resource definition column (in JSONPath format): .spec.replicas"
    assert defs[2]["description"] == "Whether it is ready"
    assert table["rows"][0]["cells"] == ["w1", 3, "False", 1.5, False, "team-a", '[{"port":80}]', "80", "120m"]


def test_custom_resource_missing_and_mistyped_values_are_null() -> None:
    obj = widget(replicas="three", paused="no")
    del obj["status"]
    obj["spec"]["size"] = 2
    row = cells("example.com", "Widget", obj, custom_columns=CRD_COLUMNS)
    assert row[1:5] == [None, None, 2.0, None] and row[8] is None
    obj["status"] = {"startedAt": "yesterday"}
    assert cells("example.com", "Widget", obj, custom_columns=CRD_COLUMNS)[8] == "<invalid>"


def test_custom_resource_without_columns_prints_name_and_age() -> None:
    for custom in (None, []):
        table = table_for("example.com", "Widget", [widget()], now=NOW, custom_columns=custom)
        assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [("Name", "string"), ("Age", "date")]
        assert table["rows"][0]["cells"] == ["w1", "5m"]
