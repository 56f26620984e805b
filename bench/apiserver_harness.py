"""What the API server benchmarks share: a ``nanokube up`` subprocess, HTTPS client sessions, statistics.

The server runs exactly as ``tests/e2e/cluster.py`` runs it (``python -m nanokube.cmd.main up --data-dir D``)
except that the port is picked here rather than with ``--port 0``: startup is measured as spawn → first
``/readyz`` 200 by polling that port, which must be known before the server prints it. Clients authenticate
with the bearer token and trust the CA from the kubeconfig the server writes, like kubectl does.
"""

from __future__ import annotations

import base64
import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

READY_LINE = "nanokube: ready in"
URL_LINE = "nanokube: API server: "


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def readyz_ok(port: int, context: ssl.SSLContext) -> bool:
    """One fresh HTTPS connection asking ``/readyz``; False while the port refuses or answers non-200."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=2)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB, from /proc/<pid>/status."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(rest.split()[0])
    return found


@dataclass
class Server:
    """One ``nanokube up`` process on ``data_dir``; ``start`` returns seconds from spawn to ``/readyz`` 200."""

    data_dir: Path
    extra: Sequence[str] = ()
    profile_dir: Path | None = None  # run under cProfile, one file per start: server-<n>.prof
    starts: int = 0
    process: subprocess.Popen[str] | None = None
    port: int = 0
    url: str = ""
    output: list[str] = field(default_factory=list)
    reported_ready: str = ""

    def start(self, timeout: float = 60.0) -> float:
        self.port = self.port or free_port()  # restarts keep the port, so credentials stay valid
        self.url = self.reported_ready = ""
        self.starts += 1
        python = [sys.executable]
        if self.profile_dir is not None:
            self.profile_dir.mkdir(parents=True, exist_ok=True)
            python += ["-m", "cProfile", "-o", str(self.profile_dir / f"server-{self.starts}.prof")]
        cmd = [*python, "-m", "nanokube.cmd.main", "up", "--node", "none", "--data-dir", str(self.data_dir),
               "--port", str(self.port), "--log-level", "warning", *self.extra]
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        spawned = time.perf_counter()
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=dict(os.environ, PYTHONUNBUFFERED="1"))
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = spawned + timeout
        while not readyz_ok(self.port, insecure):
            if self.process.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError("nanokube up did not become ready:\n" + "".join(self.output))
            time.sleep(0.002)
        elapsed = time.perf_counter() - spawned
        while not self.reported_ready and self.process.poll() is None and time.perf_counter() < deadline:
            time.sleep(0.01)  # the kubeconfig is written before the ready line
        return elapsed

    def _pump(self) -> None:
        """Read the server's output so its pipe never fills; note the URL and its own ready time."""
        process = self.process
        assert process is not None and process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            if line.startswith(URL_LINE):
                self.url = line[len(URL_LINE):].strip()
            elif line.startswith(READY_LINE):
                self.reported_ready = line[len(READY_LINE):].strip()
            if os.environ.get("NANOKUBE_BENCH_LOG"):
                sys.stderr.write(line)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss(self) -> dict[str, int]:
        return rss_kib(self.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far (from /proc/<pid>/stat)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def problems(self) -> list[str]:
        """Lines of server output that look like errors or tracebacks."""
        return [line.rstrip() for line in self.output
                if " ERROR " in line or " WARNING " in line or line.startswith("Traceback")]

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@dataclass
class Credentials:
    url: str
    token: str
    ca_pem: str

    @classmethod
    def load(cls, kubeconfig: Path) -> Credentials:
        config: dict[str, Any] = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        return cls(url=cluster["server"], token=config["users"][0]["user"]["token"], ca_pem=ca)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem)

    def session(self, context: ssl.SSLContext) -> aiohttp.ClientSession:
        """One simulated client: its own keep-alive connection, bearer token on every request."""
        connector = aiohttp.TCPConnector(ssl=context, limit=4, force_close=False)
        return aiohttp.ClientSession(
            self.url, connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            headers={"Authorization": f"Bearer {self.token}"})


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def latency_ms(values: Sequence[float]) -> dict[str, float]:
    """p50/p99/max of durations given in seconds, in milliseconds."""
    return {"p50_ms": round(percentile(values, 50) * 1000, 2), "p99_ms": round(percentile(values, 99) * 1000, 2),
            "max_ms": round(max(values, default=0.0) * 1000, 2), "n": len(values)}


def machine() -> dict[str, Any]:
    """The machine a run happened on, for the README and the JSON output."""
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu, "mem_gib": round(mem_kib / 1024 / 1024, 1),
            "python": sys.version.split()[0], "kernel": os.uname().release, "loadavg_1m": os.getloadavg()[0]}
