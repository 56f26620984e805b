"""A cluster for end-to-end tests: ``nanokube up`` in a subprocess, plus the real kubectl and Python client.

Every kubectl run gets a fresh ``--cache-dir`` so discovery is fetched each time (a warm cache hides bugs).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from nanokube.kubelet.network.bridge import delete as delete_bridge

KUBECTL = str(Path(sys.executable).parent / "kubectl")
T = TypeVar("T")


@dataclass
class Cluster:
    data_dir: Path
    process: subprocess.Popen[str] | None = None
    url: str = ""
    output: list[str] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    def environment(self) -> dict[str, str]:
        """The server's environment: its own nftables table for the service proxy (unless the caller names one),
        so clusters of parallel runs on one machine do not rewrite each other's rules."""
        return {"NANOKUBE_PROXY_TABLE": f"nke2e{os.getpid()}", **os.environ, "PYTHONUNBUFFERED": "1"}

    def start(self, *extra: str, timeout: float = 30.0) -> None:
        node = () if "--node" in extra else ("--node", "none")  # a real node only where a test asks for one
        cmd = [sys.executable, *os.environ.get("NANOKUBE_E2E_ENTRY", "-m nanokube.cmd.main").split(), "up",
               "--data-dir", str(self.data_dir), "--port", "0", *node, *extra]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=self.environment())
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if line.startswith("nanokube: API server: "):
                self.url = line.split(": ", 2)[2].strip()
            if line.startswith("nanokube: ready in"):
                _drain(self.process)
                return
        raise RuntimeError("nanokube up did not become ready:\n" + "".join(self.output))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory(prefix="kubectl-cache-") as cache:
            cmd = [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", cache, *args]
            result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                                    env=dict(os.environ, **(env or {})))
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n"
                                 f"{result.stderr}")
        return result

    def api_client(self):  # type: ignore[no-untyped-def]
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)
        return client.ApiClient(configuration)


def _drain(process: subprocess.Popen[str]) -> None:
    """Keep reading the server's output in the background so its pipe never fills."""
    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if os.environ.get("NANOKUBE_TEST_LOG"):
                sys.stderr.write(line)

    threading.Thread(target=pump, daemon=True).start()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def eventually(check: Callable[[], T], what: str, *, timeout: float = 30.0, interval: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def later(delay: float, action: Callable[[], object]) -> threading.Thread:
    """Run ``action`` after ``delay`` seconds on a daemon thread."""
    def run() -> None:
        time.sleep(delay)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def remove_workloads(c: Cluster) -> None:
    """Delete every workload and Pod and wait until the node has stopped their containers."""
    kinds = "deployments,statefulsets,daemonsets,replicasets,jobs,cronjobs"
    c.kubectl("delete", kinds, "--all", "--all-namespaces", "--wait=false", check=False)
    c.kubectl("delete", "pods", "--all", "--all-namespaces", "--timeout=60s", check=False, timeout=90)


# Runs that share a machine (several checkouts at once) give each its own bridge and Pod range.
NATIVE_BRIDGE = os.environ.get("NANOKUBE_E2E_BRIDGE", "nk0")
NATIVE_POD_CIDR = os.environ.get("NANOKUBE_E2E_POD_CIDR", "10.42.0.0/24")


@contextmanager
def native_cluster(data_dir: Path, *extra_args: str) -> Iterator[Cluster]:
    """`nanokube up --node native` for the real-node tests; removes the node's bridge if the test made it."""
    from nanokube.kubelet.local import native_available

    ok, why = native_available()
    assert ok, f"the native runtime cannot run here: {why} (run `make test` as root: it installs runc and CNI)"
    bridge, pod_cidr = NATIVE_BRIDGE, NATIVE_POD_CIDR
    had_bridge = subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode == 0
    c = Cluster(data_dir)
    c.start("--node", "native", "--node-bridge", bridge, "--node-pod-cidr", pod_cidr, *extra_args)
    try:
        yield c
    finally:
        if c.process is not None and c.process.poll() is None:
            remove_workloads(c)  # containers outlive their node by design: a test's must not outlive the test
        c.stop()
        if not had_bridge:  # the node keeps its bridge across restarts; the test made it, the test removes it
            asyncio.run(delete_bridge(bridge))  # and its masquerade chain
