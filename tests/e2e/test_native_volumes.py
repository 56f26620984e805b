"""Volumes and per-Pod files in real containers: a StatefulSet's claim outlives its Pod, downwardAPI and
projected files, /etc/hosts, the hostname and resolv.conf per dnsPolicy, and a missing ConfigMap volume
holding a Pod in ContainerCreating (FailedMount) until it is created.

Runs `nanokube up --node native` as test_native_node does (root, runc, CNI; fails, not skips, without them)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from .cluster import NATIVE_POD_CIDR, Cluster, eventually, native_cluster

JSON = dict[str, Any]
_wait = partial(eventually, timeout=60.0, interval=0.3)

STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: store}
spec:
  serviceName: store
  replicas: 1
  selector: {matchLabels: {app: store}}
  template:
    metadata: {labels: {app: store}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: nanokube.io/host
        command: [sh, -c, 'echo run >> /data/runs; echo runs=$(wc -l < /data/runs); exec sleep 3600']
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 16Mi}}
"""

INFO = """
apiVersion: v1
kind: ConfigMap
metadata: {name: info}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cret}
---
apiVersion: v1
kind: Pod
metadata:
  name: files
  labels: {app: files, tier: web}
  annotations: {note: hi}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: nanokube.io/host
    command: [sh, -c, 'cat /podinfo/name; echo; cat /podinfo/labels; echo; cat /podinfo/mem; echo;
                       cat /all/greeting /all/secret/password /all/ns; echo; touch /all/x 2>/dev/null || echo ro']
    resources: {limits: {memory: 64Mi}}
    volumeMounts:
    - {name: podinfo, mountPath: /podinfo}
    - {name: all, mountPath: /all}
  volumes:
  - name: podinfo
    downwardAPI:
      items:
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: mem, resourceFieldRef: {containerName: main, resource: limits.memory, divisor: 1Mi}}
  - name: all
    projected:
      sources:
      - configMap: {name: info}
      - secret: {name: creds, items: [{key: password, path: secret/password}]}
      - downwardAPI: {items: [{path: ns, fieldRef: {fieldPath: metadata.namespace}}]}
"""

ANNOTATED = """
apiVersion: v1
kind: Pod
metadata: {name: annotated, annotations: {a: "1"}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: nanokube.io/host, command: [sleep, "3600"], volumeMounts: [{name: info, mountPath: /podinfo}]}
  volumes:
  - name: info
    downwardAPI: {items: [{path: notes, fieldRef: {fieldPath: metadata.annotations}}]}
"""

DNS_PODS = """
apiVersion: v1
kind: Pod
metadata: {name: dns-cluster}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  hostname: box
  subdomain: boxes
  hostAliases: [{ip: 10.1.2.3, hostnames: [alias.example]}]
  containers:
  - {name: main, image: nanokube.io/host, command: [sh, -c, 'hostname; cat /etc/hosts /etc/resolv.conf']}
---
apiVersion: v1
kind: Pod
metadata: {name: dns-default}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  dnsPolicy: Default
  containers:
  - {name: main, image: nanokube.io/host, command: [sh, -c, 'hostname; cat /etc/resolv.conf']}
---
apiVersion: v1
kind: Pod
metadata: {name: dns-none}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  dnsPolicy: None
  dnsConfig:
    nameservers: [192.0.2.53]
    searches: [example.test]
    options: [{name: ndots, value: "2"}]
  containers:
  - {name: main, image: nanokube.io/host, command: [sh, -c, 'cat /etc/resolv.conf']}
"""

CLAIMED = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: scratch}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: claimed}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: nanokube.io/host, command: [sh, -c, 'echo x > /s/f'], volumeMounts: [{name: s, mountPath: /s}]}
  volumes: [{name: s, persistentVolumeClaim: {claimName: scratch}}]
"""

LATE = """
apiVersion: v1
kind: Pod
metadata: {name: late}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: nanokube.io/host, command: [cat, /cfg/k], volumeMounts: [{name: cfg, mountPath: /cfg}]}
  volumes: [{name: cfg, configMap: {name: later}}]
"""


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with native_cluster(tmp_path_factory.mktemp("native-volumes")) as c:
        _wait(lambda: json.loads(c.kubectl("get", "nodes", "-o", "json").stdout)["items"], "the node to register")
        try:
            yield c
        finally:  # whatever failed: no container, sandbox or mount outlives the module
            c.kubectl("delete", "statefulsets,pods,pvc", "--all", "--timeout=60s", check=False)


def _get(c: Cluster, *what: str) -> JSON:
    found: JSON = json.loads(c.kubectl("get", *what, "-o", "json").stdout)
    return found


def _phase(c: Cluster, name: str) -> str:
    return str(_get(c, "pod", name).get("status", {}).get("phase", ""))


def _running(c: Cluster, name: str, *, not_uid: str = "") -> JSON:
    """The Pod once its container runs (and its uid is not ``not_uid``), else an empty dict."""
    found = c.kubectl("get", "pod", name, "-o", "json", check=False)
    if found.returncode != 0:
        return {}
    pod: JSON = json.loads(found.stdout)
    statuses = pod.get("status", {}).get("containerStatuses") or []
    running = statuses and "running" in statuses[0]["state"] and pod["metadata"]["uid"] != not_uid
    return pod if running else {}


def _gone(c: Cluster, *what: str) -> bool:
    return c.kubectl("get", *what, check=False).returncode != 0


def _logs(c: Cluster, name: str) -> str:
    """The logs of a Pod once it has finished; it must have succeeded."""
    phase = _wait(lambda: _phase(c, name) in ("Succeeded", "Failed") and _phase(c, name), f"pod {name} to finish")
    logs = c.kubectl("logs", name).stdout
    assert phase == "Succeeded", f"pod {name} failed: {_get(c, 'pod', name)['status']}\n{logs}"
    return logs


def test_a_statefulset_claim_outlives_its_pod(node_cluster: Cluster) -> None:
    c = node_cluster
    c.kubectl("apply", "-f", "-", input=STATEFULSET)
    first = _wait(lambda: _running(c, "store-0"), "store-0 to run")
    _wait(lambda: "runs=1" in c.kubectl("logs", "store-0").stdout, "the first run's log")
    claim = _get(c, "pvc", "data-store-0")
    assert claim["status"]["phase"] == "Bound"
    pv = _get(c, "pv", claim["spec"]["volumeName"])
    directory = Path(pv["spec"]["hostPath"]["path"])
    assert directory.parent == c.data_dir / "storage" and (directory / "runs").read_text() == "run\n"

    c.kubectl("delete", "pod", "store-0", "--timeout=60s")
    second = _wait(lambda: _running(c, "store-0", not_uid=first["metadata"]["uid"]), "the replacement to run")
    assert second["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "data-store-0"
    _wait(lambda: "runs=2" in c.kubectl("logs", "store-0").stdout, "the replacement to see the first run's data")
    c.kubectl("delete", "statefulset", "store", "--timeout=60s")
    _wait(lambda: _gone(c, "pod", "store-0"), "store-0 to go")


def test_deleting_a_claim_removes_its_volume_directory(node_cluster: Cluster) -> None:
    c = node_cluster
    c.kubectl("apply", "-f", "-", input=CLAIMED)
    _wait(lambda: _phase(c, "claimed") == "Succeeded", "the claim's pod to succeed")
    pv = _get(c, "pv", _get(c, "pvc", "scratch")["spec"]["volumeName"])
    directory = Path(pv["spec"]["hostPath"]["path"])
    assert (directory / "f").read_text() == "x\n"
    c.kubectl("delete", "pod", "claimed", "--timeout=60s")
    c.kubectl("delete", "pvc", "scratch", "--timeout=60s")
    _wait(lambda: _gone(c, "pv", pv["metadata"]["name"]), "the Delete-policy volume to be deleted")
    _wait(lambda: not directory.exists(), f"the volume directory {directory} to be removed (needs the local-path "
                                          "provisioner's remove_dir hook wired for the local node)", timeout=20)


def test_downward_api_and_projected_files(node_cluster: Cluster) -> None:
    c = node_cluster
    c.kubectl("apply", "-f", "-", input=INFO)
    assert _logs(c, "files").splitlines() == ["files", 'app="files"', 'tier="web"', "64",
                                              "hellos3cretdefault", "ro"]
    c.kubectl("delete", "pod", "files", "--timeout=60s")


def test_annotations_file_follows_the_pods_annotations(node_cluster: Cluster) -> None:
    c = node_cluster
    c.kubectl("create", "-f", "-", input=ANNOTATED)  # create: no last-applied annotation in the file
    _wait(lambda: _running(c, "annotated"), "annotated to run")

    def notes() -> str:
        return str(c.kubectl("exec", "annotated", "--", "cat", "/podinfo/notes", check=False).stdout)

    assert _wait(notes, "the annotations file") == 'a="1"'
    c.kubectl("annotate", "pod", "annotated", "b=2")
    _wait(lambda: notes() == 'a="1"\nb="2"', "the annotations file to show the new annotation")
    c.kubectl("delete", "pod", "annotated", "--timeout=60s")


def test_hosts_hostname_and_resolv_conf_per_dns_policy(node_cluster: Cluster) -> None:
    c = node_cluster
    c.kubectl("apply", "-f", "-", input=DNS_PODS)
    cluster = _logs(c, "dns-cluster")
    lines = cluster.splitlines()
    assert lines[0] == "box"
    assert "# Kubernetes-managed hosts file." in lines and "127.0.0.1\tlocalhost" in lines
    own = [line.split("\t") for line in lines if line.endswith("\tbox.boxes.default.svc.cluster.local\tbox")]
    assert len(own) == 1 and ipaddress.ip_address(own[0][0]) in ipaddress.ip_network(NATIVE_POD_CIDR)
    # A Pod that finished before its first status write may show no podIP (not this file's concern).
    assert _get(c, "pod", "dns-cluster")["status"].get("podIP", own[0][0]) == own[0][0]
    assert "10.1.2.3\talias.example" in lines
    assert "nameserver 10.43.0.10" in lines and "options ndots:5" in lines
    search = next(line for line in lines if line.startswith("search "))
    assert search.split()[1:4] == ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]

    default = _logs(c, "dns-default").splitlines()
    assert default[0] == "dns-default"
    host_servers = [line for line in Path("/etc/resolv.conf").read_text().splitlines()
                    if line.startswith("nameserver") and not line.split()[1].startswith("127.")]
    assert "nameserver 10.43.0.10" not in default and all(s in default for s in host_servers)

    assert _logs(c, "dns-none").splitlines() == ["nameserver 192.0.2.53", "search example.test",
                                                 "options ndots:2"]
    c.kubectl("delete", "pod", "dns-cluster", "dns-default", "dns-none", "--timeout=60s")


def test_a_missing_configmap_volume_waits_in_container_creating(node_cluster: Cluster) -> None:
    c = node_cluster
    c.kubectl("apply", "-f", "-", input=LATE)

    def failed_mount() -> JSON:
        events: list[JSON] = _get(c, "events", "--field-selector", "involvedObject.name=late,reason=FailedMount")[
            "items"]
        return events[0] if events else {}

    event = _wait(failed_mount, "a FailedMount event")
    assert event["type"] == "Warning"
    assert event["message"] == 'MountVolume.SetUp failed for volume "cfg" : configmap "later" not found'
    status = _wait(lambda: _get(c, "pod", "late")["status"].get("containerStatuses") and _get(c, "pod", "late")[
        "status"], "the pod's container status")
    assert status["phase"] == "Pending"
    assert [s["state"].get("waiting", {}).get("reason") for s in status["containerStatuses"]] == ["ContainerCreating"]
    c.kubectl("create", "configmap", "later", "--from-literal=k=now-here")
    assert _logs(c, "late").strip() == "now-here"
    c.kubectl("delete", "pod", "late", "--timeout=60s")
    c.kubectl("delete", "configmap", "later")
