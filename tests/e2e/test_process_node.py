"""`nanokube up --node process`: the local node runs Pods as plain host processes, each Pod on its own 127.x
address, and says that nothing is isolated. Runs as root or not; one test runs `nanokube up` as an
unprivileged user (setpriv, util-linux) and shows `--node auto` falling back to the process runtime.

Pod range: 10.42.108.0/24, so Pods get 127.42.108.x (no bridge or namespace is made: nothing host-global)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from .cluster import KUBECTL, Cluster, eventually, unique

POD_CIDR = "10.42.108.0/24"
LOOPBACK_RANGE = ipaddress.ip_network("127.42.108.0/24")
NOBODY = 65534

WEB = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: nanokube.io/host
    command: [sh, -c, 'exec python3 -m http.server 8080 --bind "$POD_IP"']
    env:
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: NK_E2E_MARK, value: "%(mark)s"}
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
"""

_wait = partial(eventually, timeout=60.0, interval=0.3)
UP_ARGS = ("--node", "process", "--node-pod-cidr", POD_CIDR, "--node-name", unique("proc"))


@pytest.fixture(scope="module")
def process_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("process"))
    c.start(*UP_ARGS)
    try:
        yield c
    finally:
        c.stop()
        kill_leftovers(c.data_dir)


def kill_leftovers(data_dir: Path) -> None:
    """Containers outlive nanokube: kill the process groups of the shims this data dir's node started, then the
    shims (a test that failed half-way may have left Pods running)."""
    def stat(pid: str) -> list[str]:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return []

    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not any(arg.endswith(b"process_shim.py") for arg in cmdline) or str(data_dir).encode() not in b" ".join(
                cmdline):
            continue
        for child in pids:
            fields = stat(child)
            if fields and fields[1] == pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(child), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def _json(c: Cluster, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(c.kubectl(*args, "-o", "json").stdout)  # type: ignore[no-any-return]


def marked_pids(mark: str) -> list[int]:
    """Processes whose environment carries ``NK_E2E_MARK=<mark>`` (a Pod's processes)."""
    found = []
    needle = f"NK_E2E_MARK={mark}".encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{name}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(name))
    return found


def test_the_node_says_it_is_not_isolated(process_cluster: Cluster) -> None:
    c = process_cluster
    nodes = _wait(lambda: _json(c, "get", "nodes")["items"], "the node to register")
    node = nodes[0]
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("process://")
    assert node["metadata"]["annotations"]["nanokube.io/runtime"] == "process"
    condition = _wait(lambda: next((x for x in _json(c, "get", "node", node["metadata"]["name"])["status"]
                                    ["conditions"] if x["type"] == "nanokube.io/Isolation"), None),
                      "the Isolation condition")
    assert condition["status"] == "False" and "not isolated" in condition["message"]


def test_pods_serve_the_same_port_on_their_own_addresses(process_cluster: Cluster) -> None:
    c = process_cluster
    marks = {name: unique("mark") for name in ("web-a", "web-b")}
    for name, mark in marks.items():
        c.kubectl("apply", "-f", "-", input=WEB % {"name": name, "mark": mark})
    ips = {}
    for name in marks:
        c.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=60s")
        ips[name] = _json(c, "get", "pod", name)["status"]["podIP"]
        assert ipaddress.ip_address(ips[name]) in LOOPBACK_RANGE
    assert ips["web-a"] != ips["web-b"]
    for name, ip in ips.items():
        body = urllib.request.urlopen(f"http://{ip}:8080/", timeout=10).read()
        assert b"Directory listing" in body
        _wait(lambda n=name: '"GET / HTTP/1.1" 200' in c.kubectl("logs", n).stdout, f"{name}'s access log")
    result = c.kubectl("exec", "web-a", "--", "sh", "-c", 'echo "ip=$POD_IP"; exit 3', check=False)
    assert result.returncode == 3 and f"ip={ips['web-a']}" in result.stdout
    assert marked_pids(marks["web-a"]), "the Pod's processes were not found"
    c.kubectl("delete", "pod", "web-a", "--timeout=60s")
    _wait(lambda: not marked_pids(marks["web-a"]), "the deleted Pod's processes to be gone", timeout=20)
    assert marked_pids(marks["web-b"]), "the other Pod's processes went too"
    c.kubectl("delete", "pod", "web-b", "--timeout=60s")
    _wait(lambda: not marked_pids(marks["web-b"]), "the second Pod's processes to be gone", timeout=20)
    containers = c.data_dir / "process-node" / "containers"
    _wait(lambda: not any(containers.iterdir()), "the container records to be removed", timeout=20)


def test_pods_survive_a_restart_and_port_forward_reaches_them(process_cluster: Cluster) -> None:
    c = process_cluster
    mark = unique("mark")
    c.kubectl("apply", "-f", "-", input=WEB % {"name": "keep", "mark": mark})
    c.kubectl("wait", "--for=condition=Ready", "pod/keep", "--timeout=60s")
    before = marked_pids(mark)
    c.stop()
    assert marked_pids(mark) == before, "stopping nanokube touched the Pod's processes"
    c.start(*UP_ARGS)
    _wait(lambda: _json(c, "get", "pod", "keep")["status"].get("containerStatuses"), "the Pod's status")
    c.kubectl("wait", "--for=condition=Ready", "pod/keep", "--timeout=60s")
    status = _json(c, "get", "pod", "keep")["status"]["containerStatuses"][0]
    assert status["restartCount"] == 0 and "running" in status["state"]
    assert marked_pids(mark) == before, "the restarted node did not re-adopt the running process"
    forward = subprocess.Popen([KUBECTL, "--kubeconfig", str(c.kubeconfig), "port-forward", "pod/keep", ":8080"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()  # Forwarding from 127.0.0.1:PORT -> 8080
        assert "Forwarding from 127.0.0.1:" in line, line
        port = int(line.split("127.0.0.1:", 1)[1].split()[0])
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
        assert b"Directory listing" in body
    finally:
        forward.terminate()
        forward.wait(10)
    c.kubectl("delete", "pod", "keep", "--timeout=60s")
    _wait(lambda: not marked_pids(mark), "the Pod's processes to be gone", timeout=20)


# -- not root ---------------------------------------------------------------------------------------------

ID_POD = """
apiVersion: v1
kind: Pod
metadata: {name: whoami}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'echo "uid=$(id -u)"; exec sleep 3600']
    env: [{name: NK_E2E_MARK, value: "%(mark)s"}]
"""


def start_unprivileged(data_dir: Path) -> Cluster:
    """`nanokube up` (default --node auto) as uid 65534 with a data dir it owns; returns once it is ready."""
    if shutil.which("setpriv") is None:
        pytest.fail("this test needs setpriv (Debian package util-linux)")
    if os.geteuid() != 0:
        pytest.fail("this test starts nanokube as another user: run it as root")
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chown(data_dir, NOBODY, NOBODY)
    cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-m",
           "nanokube.cmd.main", "up", "--data-dir", str(data_dir), "--port", "0", "--node-pod-cidr", POD_CIDR,
           "--node-name", unique("nobody")]
    env = dict(os.environ, PYTHONUNBUFFERED="1", HOME=str(data_dir))
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    c = Cluster(data_dir, process=process)
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        c.output.append(line)
        if line.startswith("nanokube: ready in"):
            threading.Thread(target=process.stdout.read, daemon=True).start()  # keep its pipe from filling
            return c
    c.stop()
    raise AssertionError("nanokube up as an unprivileged user did not become ready:\n" + "".join(c.output))


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A data dir the unprivileged user can reach (pytest's tmp dirs are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="nk-process-e2e-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_unprivileged_up_falls_back_to_the_process_runtime(nobody_dir: Path) -> None:
    c = start_unprivileged(nobody_dir)
    try:
        text = "".join(c.output)
        assert "WARNING" in text and "not running as root" in text and "process runtime" in text
        mark = unique("mark")
        _wait(lambda: _json(c, "get", "nodes")["items"], "the node to register")
        c.kubectl("apply", "-f", "-", input=ID_POD % {"mark": mark})
        _wait(lambda: f"uid={NOBODY}" in c.kubectl("logs", "whoami", check=False).stdout, "the Pod's output")
        pids = marked_pids(mark)
        assert pids and all(os.stat(f"/proc/{p}").st_uid == NOBODY for p in pids)
        c.kubectl("delete", "pod", "whoami", "--timeout=60s")
        _wait(lambda: not marked_pids(mark), "the Pod's processes to be gone", timeout=20)
    finally:
        c.stop()
        kill_leftovers(c.data_dir)
