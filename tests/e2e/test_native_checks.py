"""Issue 4's checks on the real node, with the real kubectl and Python client against `nanokube up --node native`:
logs (follow, previous, tail, timestamps, since, limit-bytes), exec with stdin and a terminal, attach,
port-forward (kubectl's and the Python client's), cp, OOMKilled with back-off, the
docs' ``pi`` Job, an agent restart that leaves running containers alone, and a host with nothing of the node's
left once the Pods are gone and the cluster has stopped.

One cluster serves the whole module (startup costs); the tests run in file order and the last two restart and
then stop it. Needs root, runc and the CNI plugins (fails, not skips, without them)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from .cluster import KUBECTL, NATIVE_BRIDGE, NATIVE_POD_CIDR, Cluster, eventually, native_cluster, unique

MARK = unique("nkchecks")  # in the web container's environment, so the test can find its host process

WEB = """
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: nanokube.io/host
    env: [{name: E2E_MARK, value: %(mark)s}]
    command: [sh, -c, "mkdir -p /w && head -c 1000000 /dev/urandom > /w/big && cd /w &&
                       exec python3 -u -m http.server 80"]
    readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 1}
  - name: sink
    image: nanokube.io/host
    command: [python3, -c, "%(sink)s"]
"""

# Port 9000: reads a 16-byte length header and that many bytes, answers their sha256 (an upload through a forward).
SINK = r"""import hashlib, socket
server = socket.create_server(('0.0.0.0', 9000))
while True:
    conn, _ = server.accept()
    size, digest = int(conn.recv(16, socket.MSG_WAITALL)), hashlib.sha256()
    while size > 0 and (data := conn.recv(min(size, 65536))):
        digest.update(data)
        size -= len(data)
    conn.sendall(digest.hexdigest().encode())
    conn.close()"""

TALKER = """
apiVersion: v1
kind: Pod
metadata: {name: talker}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: talk
    image: nanokube.io/host
    command: [sh, -c, "for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; done; sleep 2; echo done"]
"""

HOG = """
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: hog
    image: nanokube.io/host
    command: [python3, -c, "print('allocating', flush=True); data = b'x' * (512 << 20); print('survived', flush=True)"]
    resources: {limits: {memory: 48Mi}}
"""

ATTACH = """
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: reader
    image: nanokube.io/host
    stdin: true
    command: [sh, -c, "while read line; do echo got $line; done"]
"""

PI = """
apiVersion: batch/v1
kind: Job
metadata: {name: pi}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: pi
        image: nanokube.io/host
        command: [perl, -Mbignum=bpi, -wle, "print bpi(1000)"]
"""


@dataclass
class Node:
    cluster: Cluster
    start_args: tuple[str, ...] = ()
    uids: set[str] = field(default_factory=set)  # every Pod the module made, for the cleanup check

    def apply(self, manifest: str) -> None:
        self.cluster.kubectl("apply", "-f", "-", input=manifest)

    def pod(self, name: str) -> dict[str, Any]:
        pod: dict[str, Any] = json.loads(self.cluster.kubectl("get", "pod", name, "-o", "json").stdout)
        self.uids.add(pod["metadata"]["uid"])
        return pod


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with native_cluster(tmp_path_factory.mktemp("native-checks")) as c:
        _wait(lambda: json.loads(c.kubectl("get", "nodes", "-o", "json").stdout)["items"], "the node to register")
        yield Node(c)
        if c.process is not None:  # a test failed before the cleanup test: leave nothing running anyway
            c.kubectl("delete", "pods,jobs", "--all", "--timeout=60s", check=False)
            with contextlib.suppress(AssertionError):  # the node removes sandboxes after the Pods are gone
                _wait(lambda: str(c.data_dir) not in Path("/proc/mounts").read_text(), "the node to clean up")


@pytest.fixture(scope="module")
def web(node: Node) -> str:
    """The ``web`` Pod, Ready: python's http.server on port 80 serving /w/big (1 MB of random bytes)."""
    node.apply(WEB % {"mark": MARK, "sink": SINK.replace("\n", "\\n")})
    node.cluster.kubectl("wait", "--for=condition=Ready", "pod/web", "--timeout=60s")
    node.pod("web")
    return "web"


_wait = partial(eventually, timeout=60.0, interval=0.3)


def _sha256_in_pod(c: Cluster, path: str) -> str:
    return c.kubectl("exec", "web", "-c", "web", "--", "sha256sum", path).stdout.split()[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- logs ---------------------------------------------------------------------------------------------------

def test_logs_follow_until_the_container_ends_and_tail_and_timestamps(node: Node) -> None:
    c = node.cluster
    node.apply(TALKER)
    _wait(lambda: node.pod("talker")["status"].get("phase") in ("Running", "Succeeded"), "talker to run")
    followed = c.kubectl("logs", "-f", "talker", timeout=60)  # returns only when the container has ended
    assert followed.stdout.splitlines() == [f"line {i}" for i in range(1, 11)] + ["done"]
    assert node.pod("talker")["status"]["phase"] == "Succeeded"
    assert c.kubectl("logs", "talker", "--tail=3").stdout.splitlines() == ["line 9", "line 10", "done"]
    stamped = c.kubectl("logs", "talker", "--timestamps", "--tail=2").stdout.splitlines()
    assert len(stamped) == 2, stamped
    for line, text in zip(stamped, ["line 10", "done"], strict=True):
        stamp, _, rest = line.partition(" ")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", stamp), line
        assert rest == text
    assert c.kubectl("logs", "talker", "--limit-bytes=9").stdout == "line 1\nli"
    assert c.kubectl("logs", "talker", "--since=1h").stdout == followed.stdout
    c.kubectl("delete", "pod", "talker", "--timeout=60s")


# -- exec, port-forward, cp -------------------------------------------------------------------------------

def test_exec_stdin_round_trips_with_kubectl_and_the_python_client(node: Node, web: str) -> None:
    c = node.cluster
    text = "".join(f"stdin line {i}\n" for i in range(200))
    result = c.kubectl("exec", "-i", web, "--", "cat", input=text)
    assert result.stdout == text
    counted = c.kubectl("exec", "-i", web, "--", "sh", "-c", "wc -l; exit 4", input=text, check=False)
    assert counted.returncode == 4 and counted.stdout.strip() == "200"

    from kubernetes import client
    from kubernetes.stream import stream

    api = client.CoreV1Api(c.api_client())
    resp = stream(api.connect_get_namespaced_pod_exec, web, "default", container="web",
                  command=["head", "-n", "2"], stdin=True, stdout=True, stderr=True, tty=False,
                  _preload_content=False)
    resp.write_stdin("from python\nsecond line\nnot read\n")
    out = _read_until_closed(resp)
    assert out == "from python\nsecond line\n"
    assert resp.returncode == 0
    # A terminal: the size sent on the resize channel is what the shell sees; the exit code comes back.
    resp = stream(api.connect_get_namespaced_pod_exec, web, "default", container="web", command=["sh"],
                  stdin=True, stdout=True, stderr=True, tty=True, _preload_content=False)
    resp.write_channel(4, json.dumps({"Width": 123, "Height": 45}))
    resp.write_stdin("stty size; exit 5\n")
    out = _read_until_closed(resp)
    assert "45 123\r\n" in out, out
    assert resp.returncode == 5


def _read_until_closed(resp: Any) -> str:
    out = ""
    deadline = time.monotonic() + 30
    while resp.is_open() and time.monotonic() < deadline:
        resp.update(timeout=1)
        if resp.peek_stdout():
            out += resp.read_stdout()
    resp.close()
    return out


def _log_has(c: Cluster, pod: str, text: str) -> bool:
    return text in c.kubectl("logs", pod).stdout


def test_attach_feeds_a_containers_stdin_and_leaves_it_open(node: Node) -> None:
    c = node.cluster
    node.apply(ATTACH)
    c.kubectl("wait", "--for=condition=Ready", "pod/reader", "--timeout=60s")
    node.pod("reader")
    for word in ("one", "two"):  # two attaches in turn; the first one's end of stdin leaves the container's open
        attach = subprocess.Popen([KUBECTL, "--kubeconfig", str(c.kubeconfig), "attach", "-i", "reader"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            assert attach.stdin is not None
            attach.stdin.write(f"{word}\n".encode())
            attach.stdin.close()
            _wait(partial(_log_has, c, "reader", f"got {word}\n"), f"the reader to get {word}")
        finally:
            attach.terminate()
            attach.wait(10)
    status = node.pod("reader")["status"]["containerStatuses"][0]
    assert status["restartCount"] == 0 and "running" in status["state"], status
    assert c.kubectl("logs", "reader").stdout == "got one\ngot two\n"
    c.kubectl("delete", "pod", "reader", "--timeout=60s")


def test_port_forward_carries_a_tcp_stream_to_the_pod_for_kubectl_and_the_python_client(node: Node, web: str) -> None:
    c = node.cluster
    want = _sha256_in_pod(c, "/w/big")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="kubectl-cache-") as cache:
        forward = subprocess.Popen([KUBECTL, "--kubeconfig", str(c.kubeconfig), "--cache-dir", cache,
                                    "port-forward", f"pod/{web}", f"{port}:80"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert forward.stdout is not None
            first = forward.stdout.readline()
            assert first.startswith("Forwarding from 127.0.0.1:"), first
            for _ in range(3):  # each request is a new stream over the same connection
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/big", timeout=30).read()
                assert len(body) == 1_000_000 and hashlib.sha256(body).hexdigest() == want
        finally:
            forward.terminate()
            forward.wait(10)

    upload = os.urandom(3_000_000)
    with tempfile.TemporaryDirectory(prefix="kubectl-cache-") as cache:
        forward = subprocess.Popen([KUBECTL, "--kubeconfig", str(c.kubeconfig), "--cache-dir", cache,
                                    "port-forward", f"pod/{web}", f"{port}:9000"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert forward.stdout is not None and forward.stdout.readline().startswith("Forwarding from")
            with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
                conn.sendall(str(len(upload)).encode().ljust(16) + upload)
                answer = conn.recv(64, socket.MSG_WAITALL)
            assert answer.decode() == hashlib.sha256(upload).hexdigest()
        finally:
            forward.terminate()
            forward.wait(10)

    from kubernetes import client
    from kubernetes.stream import portforward

    api = client.CoreV1Api(c.api_client())
    forwarded = portforward(api.connect_get_namespaced_pod_portforward, web, "default", ports="80")
    sock = forwarded.socket(80)
    sock.setblocking(True)
    sock.sendall(b"GET /big HTTP/1.0\r\nHost: web\r\n\r\n")
    received = b""
    while chunk := sock.recv(1 << 16):
        received += chunk
    sock.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and hashlib.sha256(body).hexdigest() == want
    assert forwarded.error(80) is None
    forwarded.close()


def test_kubectl_cp_both_ways(node: Node, web: str, tmp_path: Path) -> None:
    c = node.cluster
    local = tmp_path / "up.txt"
    local.write_text(f"copied up {MARK}\n" * 1000)
    c.kubectl("cp", str(local), f"{web}:/w/up.txt")
    assert c.kubectl("exec", web, "--", "cat", "/w/up.txt").stdout == local.read_text()
    down = tmp_path / "big"
    c.kubectl("cp", f"{web}:/w/big", str(down))
    assert hashlib.sha256(down.read_bytes()).hexdigest() == _sha256_in_pod(c, "/w/big")


# -- OOM and back-off ---------------------------------------------------------------------------------------

def test_a_container_over_its_memory_limit_is_oom_killed_and_restarted_with_back_off(node: Node) -> None:
    c = node.cluster
    node.apply(HOG)
    seen_waiting: set[str] = set()

    def restarted_twice() -> dict[str, Any]:
        status = (node.pod("hog")["status"].get("containerStatuses") or [{}])[0]
        seen_waiting.add((status.get("state", {}).get("waiting") or {}).get("reason", ""))
        return status if status.get("restartCount", 0) >= 2 else {}

    status = _wait(restarted_twice, "the hog to be restarted twice", timeout=90)
    terminated = status["lastState"]["terminated"]
    assert terminated["reason"] == "OOMKilled" and terminated["exitCode"] == 137, terminated
    assert "CrashLoopBackOff" in seen_waiting, seen_waiting
    previous = c.kubectl("logs", "hog", "--previous").stdout
    assert "allocating" in previous and "survived" not in previous
    events = json.loads(c.kubectl("get", "events", "--field-selector", "involvedObject.name=hog",
                                  "-o", "json").stdout)["items"]
    assert any(e["reason"] == "BackOff" for e in events), [e["reason"] for e in events]
    c.kubectl("delete", "pod", "hog", "--timeout=60s")


# -- the docs' pi Job ---------------------------------------------------------------------------------------

def test_the_docs_pi_job_completes_on_the_host_image(node: Node) -> None:
    c = node.cluster
    node.apply(PI)
    c.kubectl("wait", "--for=condition=complete", "job/pi", "--timeout=90s")
    digits = c.kubectl("logs", "job/pi").stdout.strip()
    assert digits.startswith("3.14159265358979323846264338327950288419716939937510")
    assert len(digits) == 1001 and digits[2:].isdigit()
    pods = json.loads(c.kubectl("get", "pods", "-l", "job-name=pi", "-o", "json").stdout)["items"]
    node.uids.update(p["metadata"]["uid"] for p in pods)
    c.kubectl("delete", "job", "pi", "--cascade=foreground", "--timeout=60s")


# -- agent restart ------------------------------------------------------------------------------------------

def _host_process(mark: str) -> tuple[int, str]:
    """(host PID, start time in ticks) of the process whose environment carries ``mark``."""
    needle = f"E2E_MARK={mark}".encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        if needle in environ.split(b"\0") and "python3" in stat:
            return int(entry.name), stat.rsplit(")", 1)[1].split()[19]
    raise AssertionError(f"no host process carries {mark}")


def _container_status(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in pod["status"]["containerStatuses"] if s["name"] == name)


def test_restarting_nanokube_up_leaves_running_containers_alone(node: Node, web: str) -> None:
    c = node.cluster
    before = _container_status(node.pod(web), "web")
    process = _host_process(MARK)
    c.stop()
    assert _host_process(MARK) == process  # the container outlives its agent
    c.start("--node", "native", "--node-bridge", NATIVE_BRIDGE, "--node-pod-cidr", NATIVE_POD_CIDR)
    _wait(lambda: json.loads(c.kubectl("get", "nodes", "-o", "json").stdout)["items"], "the node to come back")
    c.kubectl("wait", "--for=condition=Ready", f"pod/{web}", "--timeout=60s")
    after = _container_status(node.pod(web), "web")
    assert _host_process(MARK) == process
    assert after["containerID"] == before["containerID"]
    assert after["restartCount"] == before["restartCount"]
    assert after["state"]["running"]["startedAt"] == before["state"]["running"]["startedAt"]
    # Re-adopted: exec, logs and the Pod IP still reach the same container.
    assert c.kubectl("exec", web, "--", "sh", "-c", "echo $E2E_MARK").stdout.strip() == MARK
    ip = node.pod(web)["status"]["podIP"]
    assert len(urllib.request.urlopen(f"http://{ip}/big?after-restart", timeout=30).read()) == 1_000_000
    with contextlib.suppress(AssertionError):
        _wait(lambda: "GET /big?after-restart" in c.kubectl("logs", web, "--tail=3").stdout, "the request's log")
    assert "GET /big?after-restart" in c.kubectl("logs", web, "--tail=3").stdout, c.kubectl("logs", web).stdout


# -- nothing left behind ------------------------------------------------------------------------------------

def _leftovers(c: Cluster, uids: set[str], *, processes: bool) -> list[str]:
    """What the node made that is still on the host; ``processes`` too once the agent has gone (while it runs
    it keeps one spare shim started ahead of time)."""
    found: list[str] = []
    netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    found += [f"netns {n}" for n in sorted(netns) if any(u in n for u in uids)]  # named <prefix><pod uid>
    links = subprocess.run(["ip", "-o", "link", "show", "master", NATIVE_BRIDGE], capture_output=True,
                           text=True).stdout
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines()]
    for controller in Path("/sys/fs/cgroup").iterdir():  # the runtime's Pod cgroups are /nanokube/pod<uid>
        pod_cgroups = controller / "nanokube"
        if pod_cgroups.is_dir():
            found += [f"cgroup {p}" for p in pod_cgroups.iterdir() if p.is_dir() and p.name[3:] in uids]
    found += [f"mount {line.split()[1]}" for line in Path("/proc/mounts").read_text().splitlines()
              if str(c.data_dir) in line]
    state = str(c.data_dir / "node")  # shims and runc run with paths under it; the web container carries MARK
    for entry in os.scandir("/proc") if processes else ():
        if entry.name.isdigit():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environ = Path(entry.path, "environ").read_bytes().split(b"\0")
                cwd = os.readlink(Path(entry.path, "cwd"))  # a shim works in its container's directory
            except OSError:
                continue
            if state in cmdline or cwd.startswith(state) or f"E2E_MARK={MARK}".encode() in environ:
                found.append(f"process {entry.name}: {cmdline[:200]}")
    return found


def test_nothing_is_left_on_the_host_after_the_pods_are_deleted(node: Node) -> None:
    c = node.cluster
    pods = json.loads(c.kubectl("get", "pods", "-A", "-o", "json").stdout)["items"]
    node.uids.update(p["metadata"]["uid"] for p in pods)
    assert node.uids, "the module made no Pods to check"
    c.kubectl("delete", "pods", "--all", "-A", "--timeout=60s")
    _wait(lambda: not json.loads(c.kubectl("get", "pods", "-A", "-o", "json").stdout)["items"], "every Pod to go")
    with contextlib.suppress(AssertionError):
        _wait(lambda: not _leftovers(c, node.uids, processes=False), "the node to clean up", timeout=30)
    assert _leftovers(c, node.uids, processes=False) == []
    c.stop()
    assert _leftovers(c, node.uids, processes=True) == []
