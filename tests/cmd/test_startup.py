"""`nanokube up` explains startup failures plainly and exits non-zero."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


def run_up(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nanokube.cmd.main", "up", "--node", "none", *args],
                          capture_output=True,
                          text=True, timeout=60)


def test_port_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_up("--data-dir", str(tmp_path / "d"), "--port", str(port))
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_data_dir_unusable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_up("--data-dir", str(blocker / "sub"), "--port", "0")
    assert result.returncode == 1
    assert f"cannot create the data directory {blocker / 'sub'}" in result.stderr
    assert "--data-dir" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_kubectl_without_a_cluster(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "nanokube.cmd.main", "kubectl", "--data-dir", str(tmp_path),
                             "get", "pods"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "start a cluster with `nanokube up` first" in result.stderr


def test_second_cluster_on_the_same_data_dir(tmp_path: Path) -> None:
    first = subprocess.Popen([sys.executable, "-m", "nanokube.cmd.main", "up", "--node", "none", "--data-dir",
                              str(tmp_path), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert first.stdout is not None
        for line in first.stdout:
            if line.startswith("nanokube: ready in"):
                break
        result = run_up("--data-dir", str(tmp_path), "--port", "0")
        assert result.returncode == 1
        assert f"the data directory {tmp_path} is in use by another nanokube (pid {first.pid})" in result.stderr
    finally:
        first.terminate()
        first.wait(15)
