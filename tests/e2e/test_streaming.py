"""Streaming end to end with the real kubectl and the official Python client: logs, logs -f, exec (exit codes,
stdin), attach, port-forward (kubectl's SPDY tunnel and the Python client's v4 channels).

The control plane, simulated nodes, their kubelet server and the streaming proxy run in the test's event loop,
wired as ``nanokube up --sim-nodes 3`` wires them; kubectl runs as a subprocess, the Python client in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import struct
import sys
import termios
from collections.abc import AsyncIterator
from pathlib import Path

from nanokube.api.errors import NotFound
from nanokube.apiserver.streaming import StreamingProxy, StreamingSettings
from nanokube.client.interface import JSON
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.server import KubeletServer, KubeletServerSettings
from nanokube.kubelet.sim import SimSettings, Simulator

KUBECTL = str(Path(sys.executable).parent / "kubectl")
TOKEN = "e2e-kubelet-token"


class Harness:
    def __init__(self, cluster: InProcessCluster, kubeconfig: Path) -> None:
        self.cluster = cluster
        self.kubeconfig = kubeconfig
        self.pods = cluster.resource("", "v1", "pods")

    async def kubectl(self, *args: str, stdin: bytes | None = None, timeout: float = 30
                      ) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, "--kubeconfig", str(self.kubeconfig), *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(stdin or b""), timeout)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def pod(self, name: str, *, annotations: dict[str, str] | None = None, restart_policy: str = "Always",
                  node: str = "sim-node-1", containers: tuple[str, ...] = ("app",)) -> JSON:
        body = {"metadata": {"name": name, "annotations": dict(annotations or {})},
                "spec": {"nodeName": node, "restartPolicy": restart_policy,
                         "containers": [{"name": c, "image": "busybox:1.36"} for c in containers]}}
        await self.cluster.client.create(self.pods, "default", body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while loop.time() < deadline:
            with contextlib.suppress(NotFound):
                found = await self.cluster.client.get(self.pods, "default", name)
                if (found.get("status") or {}).get("phase") == "Running":
                    return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"pod {name} did not start")

    def api(self):  # type: ignore[no-untyped-def]
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.cluster.url
        return client.CoreV1Api(client.ApiClient(configuration))


@contextlib.asynccontextmanager
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with InProcessCluster(serve=True) as cluster:
        sim = Simulator(cluster.client, SimSettings(nodes=3, pod_start_delay=(0.0, 0.0), lease_interval=0.5,
                                                    status_interval=1.0))
        kubelet = KubeletServer(sim.agent, KubeletServerSettings(port=0, token=TOKEN))
        cluster.server.rest.sub.streaming = StreamingProxy(cluster.storage, cluster.storage.registry,
                                                           StreamingSettings(kubelet_token=TOKEN))
        stop = asyncio.Event()
        bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        tasks = [asyncio.create_task(kubelet.run(stop=stop, started=bound.set_result))]
        sim.serve_kubelet("127.0.0.1", await bound)
        tasks.append(asyncio.create_task(sim.run(stop=stop)))
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
            f"clusters: [{{name: sim, cluster: {{server: \"{cluster.url}\"}}}}]\n"
            "users: [{name: anyone, user: {}}]\n"
            "contexts: [{name: sim, context: {cluster: sim, user: anyone, namespace: default}}]\n")
        try:
            await asyncio.wait_for(sim.ready.wait(), 10)
            yield Harness(cluster, kubeconfig)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[int]:
    """A TCP echo server on loopback, the "web server" simulated Pods forward to."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_kubectl_logs_and_logs_follow_until_the_container_exits(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.pod("web", annotations={"sim.nanokube.io/log": "first line\nsecond line",
                                        "sim.nanokube.io/run-seconds": "2"}, restart_policy="Never")
        code, out, err = await h.kubectl("logs", "web")
        assert code == 0, err
        assert out.splitlines()[1:] == ["first line", "second line"]
        code, out, err = await h.kubectl("logs", "web", "--tail=1", "--timestamps")
        assert code == 0 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z second line\n", out), out
        code, out, err = await h.kubectl("logs", "-f", "web")
        assert code == 0, err
        assert out.splitlines()[-1] == "simulated container app exited with code 0"
        code, _, err = await h.kubectl("logs", "web", "-c", "nope")
        assert code == 1 and "container nope is not valid for pod web" in err


async def test_kubectl_exec_exit_codes_output_streams_and_stdin(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.pod("shell")
        code, out, err = await h.kubectl("exec", "shell", "--", "sh", "-c", "exit 3")
        assert code == 3 and out == ""
        code, out, err = await h.kubectl("exec", "shell", "--", "sh", "-c", "echo out; echo err >&2")
        assert (code, out, err) == (0, "out\n", "err\n")
        code, out, err = await h.kubectl("exec", "-i", "shell", "--", "cat", stdin=b"stdin round trip\n")
        assert (code, out) == (0, "stdin round trip\n"), err
        code, out, err = await h.kubectl("exec", "shell", "--", "python3")
        assert code == 1 and 'exec: "python3": executable file not found in $PATH' in err
        # A Running pod whose container "done" has exited: the kubelet's refusal, through kubectl's SPDY fallback.
        await h.pod("half", containers=("app", "done"), restart_policy="Never",
                    annotations={"sim.nanokube.io/run-seconds.done": "0"})
        code, out, err = await h.kubectl("exec", "half", "-c", "done", "--", "true")
        assert (code, err) == (1, 'error: unable to upgrade connection: container not found ("done")\n')


async def test_kubectl_exec_with_a_terminal_sends_its_size(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.pod("term")
        controller, terminal = pty.openpty()
        try:
            fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 41, 123, 0, 0))  # rows, columns
            proc = await asyncio.create_subprocess_exec(
                KUBECTL, "--kubeconfig", str(h.kubeconfig), "exec", "-it", "term", "--", "stty", "size",
                stdin=terminal, stdout=terminal, stderr=terminal)
            os.close(terminal)
            terminal = -1
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            out = b""
            with contextlib.suppress(OSError):  # EIO once kubectl's side of the terminal is gone
                while chunk := os.read(controller, 4096):
                    out += chunk
        finally:
            os.close(controller)
            if terminal >= 0:
                os.close(terminal)
        assert out == b"41 123\r\n"


async def test_kubectl_attach_relays_until_the_container_exits(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.pod("main", annotations={"sim.nanokube.io/run-seconds": "2"}, restart_policy="Never")
        code, out, err = await h.kubectl("attach", "-i", "main", stdin=b"hello main\n")
        assert (code, out) == (0, "hello main\n"), err


async def test_kubectl_port_forward_carries_tcp_over_spdy(tmp_path: Path) -> None:
    async with echo_server() as port, harness(tmp_path) as h:
        await h.pod("web", annotations={"sim.nanokube.io/port-forward-to": f"127.0.0.1:{port}"})
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, "--kubeconfig", str(h.kubeconfig), "port-forward", "pod/web", ":80",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            found = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> 80", line)
            assert found, line
            for i in range(3):  # one SPDY stream pair per connection, all over one tunnel
                reader, writer = await asyncio.open_connection("127.0.0.1", int(found.group(1)))
                message = f"connection {i}: ".encode() + b"x" * 100_000
                writer.write(message)
                await writer.drain()
                assert await asyncio.wait_for(reader.readexactly(len(message)), 10) == message
                writer.close()
                await writer.wait_closed()
        finally:
            proc.terminate()
            await proc.wait()


async def test_python_client_exec_and_portforward(tmp_path: Path) -> None:
    async with echo_server() as port, harness(tmp_path) as h:
        await h.pod("web", annotations={"sim.nanokube.io/port-forward-to": f"127.0.0.1:{port}"})
        api = h.api()

        def use_the_client() -> tuple[str, int | None, str, bytes, object]:
            from kubernetes.stream import portforward, stream

            resp = stream(api.connect_get_namespaced_pod_exec, "web", "default",
                          command=["sh", "-c", "echo from python; exit 3"], stderr=True, stdin=False,
                          stdout=True, tty=False, _preload_content=False)
            resp.run_forever(timeout=10)
            out, code = resp.read_stdout(), resp.returncode
            plain = stream(api.connect_get_namespaced_pod_exec, "web", "default", command=["echo", "plain"],
                           stderr=True, stdin=False, stdout=True, tty=False)
            forward = portforward(api.connect_get_namespaced_pod_portforward, "web", "default", ports="80")
            sock = forward.socket(80)
            sock.setblocking(True)
            sock.sendall(b"python over v4")
            echoed = sock.recv(1024)
            sock.close()
            return out, code, plain, echoed, forward.error(80)

        out, code, plain, echoed, error = await asyncio.wait_for(asyncio.to_thread(use_the_client), 30)
        assert (out, code) == ("from python\n", 3)
        assert plain == "plain\n"
        assert (echoed, error) == (b"python over v4", None)
