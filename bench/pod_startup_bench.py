"""Pod startup latency on the real native node, beside a bare ``runc run`` of the same container.

Kubernetes' SLI: the time from a Pod's creation until it is Running with every container started, as observed
through a watch. Here ``nanokube up --node native`` runs in a subprocess on its own data dir, bridge and Pod
range (the node exactly as users run it: API server, scheduler, controllers, kubelet, CNI, runc shims), and
this process creates Pods paced at ``--rate`` per second (default 20) in two waves of ``--pods``/2 while one
watch records when each is first seen Running. Latency is measured from the moment each create request is
sent (``from_send``; the paced schedule is never behind by more than a request) and from its 201
(``from_ack``). The image is a one-layer busybox image this benchmark builds from Debian's ``busybox-static``
and loads with ``nanokube image import``; one warm-up Pod runs first, so, as in the SLI, no image work is timed.

The baseline is ``runc run`` of the same root filesystem (the directory the image layer was made from) with
the same command, ``sh -c 'echo started; exec sleep 3600'``, in a fresh network namespace: the time from
spawning runc until the container's "started" line arrives on its stdout pipe, ``--runc-runs`` times one
after the other, in the same run before the node starts.

CPU: ``nanokube up`` and every process it starts (shims, runc, CNI plugins) are put in a ``cpuacct`` cgroup
of their own; ``node_cpu_ms_per_pod`` is what they used over the timed waves divided by the Pods, which other
work on the machine inflates far less than it does latencies (``loadavg_1m`` says how busy it was).

Memory: after the first wave (``--pods``/2 Pods running, 50 by default) the ``nanokube up`` process's VmRSS,
and the shims' (one ``shim.py`` process per container, forked from the node's shim zygote) VmRSS and PSS
(their shared pages divided among them: what they really cost), summed and per shim; again after the second
wave.

Prints one JSON line per result (``pod_startup``, ``pod_startup_runc``, ``pod_startup_rss``); progress goes to
stderr. Needs root, runc, the CNI plugins and busybox-static; without them it prints a ``skipped`` line and
exits 0. Everything it made is removed at the end (Pods deleted through the API, then by id whatever remains).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from apiserver_harness import Credentials, Server, latency_ms, rss_kib

IMAGE = "bench.nanokube.io/busybox:static"
COMMAND = ["sh", "-c", "echo started; exec sleep 3600"]
POD_CPU = "10m"


def log(message: str) -> None:
    print(f"pod_startup: {message}", file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


def missing_prerequisites() -> str:
    from nanokube.kubelet.local import native_available

    ok, why = native_available()
    if not ok:
        return why
    busybox = Path("/bin/busybox")
    if not busybox.exists() or b"ld-linux" in busybox.read_bytes()[:8192]:
        return "a static /bin/busybox is needed (apt-get install busybox-static)"
    return ""


# -- the image ----------------------------------------------------------------------------------------------

def build_image(work: Path) -> tuple[Path, Path]:
    """A busybox root filesystem and a docker-archive of it as one layer; returns (rootfs, archive)."""
    from nanokube.kubelet.runtime.rootfs import build_busybox_rootfs

    rootfs = build_busybox_rootfs(work / "rootfs")
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tf:
        for item in sorted(rootfs.iterdir()):
            tf.add(item, arcname=item.name)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    archive = work / "busybox.tar"
    with tarfile.open(archive, "w") as tf:
        for name, data in ((config_name, config), ("layer0/layer.tar", layer_bytes),
                           ("manifest.json", json.dumps([{"Config": config_name, "RepoTags": [IMAGE],
                                                          "Layers": ["layer0/layer.tar"]}]).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return rootfs, archive


def import_image(data_dir: Path, archive: Path) -> None:
    subprocess.run([sys.executable, "-m", "nanokube.cmd.main", "image", "import", "--data-dir", str(data_dir),
                    str(archive)], check=True, stdout=subprocess.DEVNULL)


# -- bare runc ----------------------------------------------------------------------------------------------

def runc_baseline(work: Path, rootfs: Path, runs: int) -> tuple[list[float], list[float]]:
    """Seconds from spawning ``runc run`` to the container's first line, ``runs`` times in a row; and the CPU
    seconds each ``runc run`` used (its own and its children's, the container's included)."""
    bundle, root = work / "bundle", work / "runc-root"
    bundle.mkdir()
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    cgroup_parent = f"/nanokube-bench-{secrets.token_hex(3)}"
    spec["process"].update(terminal=False, args=COMMAND)
    spec["root"] = {"path": str(rootfs), "readonly": True}
    spec["hostname"] = "bench"
    timings: list[float] = []
    cpu: list[float] = []
    try:
        for n in range(runs):
            cid = f"bench-{n}"
            spec["linux"]["cgroupsPath"] = f"{cgroup_parent}/{cid}"
            (bundle / "config.json").write_text(json.dumps(spec))
            started = time.perf_counter()
            proc = subprocess.Popen(["runc", "--root", str(root), "run", "--bundle", str(bundle), cid],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert proc.stdout is not None
            line = proc.stdout.readline()
            elapsed = time.perf_counter() - started
            subprocess.run(["runc", "--root", str(root), "kill", cid, "KILL"], capture_output=True)
            assert proc.stderr is not None
            err = proc.stderr.read()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            proc.stdout.close()
            proc.stderr.close()
            cpu.append(usage.ru_utime + usage.ru_stime)
            subprocess.run(["runc", "--root", str(root), "delete", "--force", cid], capture_output=True)
            if line.strip() != b"started":
                raise RuntimeError(f"runc run printed {line!r}: {err.decode(errors='replace')}")
            timings.append(elapsed)
    finally:
        for d in Path("/sys/fs/cgroup").glob(f"*{cgroup_parent}"):
            with contextlib.suppress(OSError):
                d.rmdir()
    return timings, cpu


# -- the node -----------------------------------------------------------------------------------------------

def pod_manifest(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "startup-bench"}},
            "spec": {"terminationGracePeriodSeconds": 0, "enableServiceLinks": False,
                     "containers": [{"name": "c", "image": IMAGE, "imagePullPolicy": "Never", "command": COMMAND,
                                     "resources": {"requests": {"cpu": POD_CPU}}}]}}


def running(pod: dict[str, Any]) -> bool:
    """Running with every container started: the SLI's end point."""
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    return status.get("phase") == "Running" and bool(containers) and all(
        "running" in (c.get("state") or {}) for c in containers)


class Watcher:
    """One watch on the Pods of ``default``: when each Pod (by name) was first seen running."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.seen: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def run(self, resource_version: str) -> None:
        params = {"watch": "true", "resourceVersion": resource_version, "allowWatchBookmarks": "false"}
        async with self.session.get("/api/v1/namespaces/default/pods", params=params) as response:
            response.raise_for_status()
            async for line in response.content:
                event = json.loads(line)
                pod = event["object"]
                name = pod["metadata"]["name"]
                if event["type"] != "DELETED" and name not in self.seen and running(pod):
                    self.seen[name] = time.perf_counter()
                    self.changed.set()

    async def wait_for(self, names: list[str], timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while not all(n in self.seen for n in names):
            self.changed.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                missing = [n for n in names if n not in self.seen]
                raise RuntimeError(f"{len(missing)} pods never ran, e.g. {missing[:3]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)


async def create_paced(session: aiohttp.ClientSession, names: list[str], rate: float) -> dict[str, tuple[float, float]]:
    """Create the Pods at ``rate`` per second; name -> (sent, acknowledged) perf_counter times."""
    times: dict[str, tuple[float, float]] = {}

    async def create(name: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        sent = time.perf_counter()
        async with session.post("/api/v1/namespaces/default/pods", json=pod_manifest(name)) as response:
            body = await response.read()
            if response.status != 201:
                raise RuntimeError(f"creating {name}: {response.status} {body[:300]!r}")
        times[name] = (sent, time.perf_counter())

    start = time.perf_counter() + 0.05
    await asyncio.gather(*(create(name, start + i / rate) for i, name in enumerate(names)))
    return times


async def get_json(session: aiohttp.ClientSession, path: str) -> dict[str, Any]:
    async with session.get(path) as response:
        response.raise_for_status()
        result: dict[str, Any] = await response.json()
        return result


async def wait_node_ready(session: aiohttp.ClientSession, node: str, timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        with contextlib.suppress(aiohttp.ClientResponseError):
            found = await get_json(session, f"/api/v1/nodes/{node}")
            if any(c["type"] == "Ready" and c["status"] == "True" for c in found["status"].get("conditions", [])):
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"node {node} never became Ready")


async def delete_all(session: aiohttp.ClientSession, timeout: float = 120.0) -> None:
    """Delete every Pod of ``default`` (grace 0) and wait until the node has confirmed each deletion."""
    async with session.delete("/api/v1/namespaces/default/pods", params={"gracePeriodSeconds": "0"}) as response:
        await response.read()
    deadline = time.perf_counter() + timeout
    while (await get_json(session, "/api/v1/namespaces/default/pods"))["items"]:
        if time.perf_counter() > deadline:
            raise RuntimeError("pods were not deleted in time")
        await asyncio.sleep(0.25)


async def wait_torn_down(state_dir: Path, timeout: float = 60.0) -> None:
    """Pods deleted with grace 0 leave the API at once; wait until the node has torn their sandboxes down
    (so it stops with nothing to clean, and takes its masquerade rules with it)."""
    sandboxes = state_dir / "sandboxes"
    deadline = time.perf_counter() + timeout
    while sandboxes.is_dir() and any(sandboxes.iterdir()):
        if time.perf_counter() > deadline:
            log("the node did not tear every sandbox down in time; cleaning up by id")
            return
        await asyncio.sleep(0.2)


def shim_pids(state_dir: Path) -> list[int]:
    """Containers' shims of this node (not the spare, which has no container yet)."""
    wanted = str(state_dir / "containers").encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if b"shim.py" in Path(f"/proc/{pid}/cmdline").read_bytes() and \
                    wanted in Path(f"/proc/{pid}/cwd").resolve().as_posix().encode():
                found.append(int(pid))
    return found


def pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


class CpuAccount:
    """A cgroup v1 ``cpuacct`` group holding ``nanokube up`` and everything it starts (shims, runc, CNI
    plugins; not the containers, which runc moves to their own cgroups): CPU the node spent, whatever else
    the machine does. ``None`` where there is no cpuacct hierarchy."""

    def __init__(self) -> None:
        self.path = Path("/sys/fs/cgroup/cpuacct") / f"nanokube-bench-{secrets.token_hex(3)}"

    def adopt(self, pid: int) -> bool:
        try:
            self.path.mkdir()
            (self.path / "cgroup.procs").write_text(str(pid))
        except OSError:
            return False
        return True

    def seconds(self) -> float:
        try:
            return int((self.path / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            return 0.0

    def remove(self) -> None:
        parent = self.path.parent / "cgroup.procs"
        with contextlib.suppress(OSError):
            for pid in (self.path / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    parent.write_text(pid)
            self.path.rmdir()


def memory(server: Server, state_dir: Path, pods: int) -> dict[str, Any]:
    shims = shim_pids(state_dir)
    rss = [rss_kib(p).get("VmRSS", 0) for p in shims]
    pss = [pss_kib(p) for p in shims]
    agent = server.rss()
    return {"bench": "pod_startup_rss", "pods_running": pods, "agent_rss_mib": round(agent["VmRSS"] / 1024, 1),
            "agent_peak_mib": round(agent["VmHWM"] / 1024, 1), "shims": len(shims),
            "shims_rss_mib": round(sum(rss) / 1024, 1), "shims_pss_mib": round(sum(pss) / 1024, 1),
            "shim_rss_mib_each": round(sum(rss) / max(1, len(rss)) / 1024, 2),
            "shim_pss_mib_each": round(sum(pss) / max(1, len(pss)) / 1024, 2)}


async def measure(server: Server, args: argparse.Namespace, state_dir: Path, account: CpuAccount) -> None:
    creds = Credentials.load(server.data_dir / "kubeconfig")
    context = creds.ssl_context()
    async with creds.session(context) as session, creds.session(context) as watch_session:
        await wait_node_ready(session, args.node_name)
        listed = await get_json(session, "/api/v1/namespaces/default/pods")
        watcher = Watcher(watch_session)
        watching = asyncio.ensure_future(watcher.run(listed["metadata"]["resourceVersion"]))
        try:
            await create_paced(session, ["warmup"], 1.0)
            await watcher.wait_for(["warmup"], 60)
            await delete_all(session)
            log("warm-up pod ran; measuring")
            cpu0, wall0, node_cpu0 = server.cpu_seconds(), time.perf_counter(), account.seconds()
            half = args.pods // 2
            waves = [[f"pod-{i}" for i in range(half)], [f"pod-{i}" for i in range(half, args.pods)]]
            created: dict[str, tuple[float, float]] = {}
            rss = []
            for n, names in enumerate(waves):
                created.update(await create_paced(session, names, args.rate))
                try:
                    await watcher.wait_for(names, 60)
                except RuntimeError:
                    for name in names:
                        if name not in watcher.seen:
                            pod = await get_json(session, f"/api/v1/namespaces/default/pods/{name}")
                            log(f"{name} never ran: {json.dumps(pod.get('status'))}")
                    raise
                log(f"wave {n + 1}: {len(names)} pods running")
                await asyncio.sleep(1.0)
                rss.append(memory(server, state_dir, sum(len(w) for w in waves[:n + 1])))
            wall = time.perf_counter() - wall0
            cpu = (server.cpu_seconds() - cpu0) / wall
            node_cpu = account.seconds() - node_cpu0
            from_send = [watcher.seen[n] - created[n][0] for n in created]
            from_ack = [watcher.seen[n] - created[n][1] for n in created]
            create_ms = [created[n][1] - created[n][0] for n in created]
            result = {"bench": "pod_startup", "pods": len(created), "rate_per_s": args.rate,
                      "from_send": latency_ms(from_send), "from_ack": latency_ms(from_ack),
                      "create_request": latency_ms(create_ms), "agent_cpu_cores": round(cpu, 2),
                      "node_cpu_ms_per_pod": round(node_cpu * 1000 / len(created), 1),
                      "node_cpu_cores": round(node_cpu / wall, 2), "loadavg_1m": os.getloadavg()[0]}
            emit(result)
            if args.dump:
                Path(args.dump).write_text(json.dumps({n: {"sent": created[n][0], "ack": created[n][1],
                                                           "running": watcher.seen[n]} for n in created}))
            for line in rss:
                emit(line)
            log("deleting the pods")
            await delete_all(session)
            await wait_torn_down(state_dir)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watching


def force_clean(data_dir: Path, bridge: str, had_bridge: bool) -> None:
    """Whatever the node left (after a failure): runc containers, shims, mounts, namespaces, the bridge."""
    state = data_dir / "node"
    root = state / "runc"
    if root.exists():
        out = subprocess.run(["runc", "--root", str(root), "list", "-q"], capture_output=True, text=True).stdout
        for cid in out.split():
            subprocess.run(["runc", "--root", str(root), "delete", "--force", cid], capture_output=True)
    for pid in shim_pids(state):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(str(data_dir))]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    records = state / "cni" / "pods"
    if records.is_dir():
        for record in records.iterdir():
            with contextlib.suppress(ValueError, OSError):
                name = json.loads(record.read_text()).get("netnsName", "")
                if name:
                    subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    if not had_bridge:
        from nanokube.kubelet.network.bridge import delete

        with contextlib.suppress(Exception):
            asyncio.run(delete(bridge))  # the bridge and its masquerade rules


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 pods, 10 runc runs")
    parser.add_argument("--pods", type=int, default=100, help="pods in all, created in two equal waves")
    parser.add_argument("--rate", type=float, default=20.0, help="pods created per second")
    parser.add_argument("--runc-runs", type=int, default=30)
    parser.add_argument("--bridge", default=os.environ.get("NANOKUBE_E2E_BRIDGE", "nkbench0"))
    parser.add_argument("--pod-cidr", default=os.environ.get("NANOKUBE_E2E_POD_CIDR", "10.42.254.0/24"))
    parser.add_argument("--node-name", default="bench-node")
    parser.add_argument("--dump", metavar="FILE", help="write each Pod's times (perf_counter) as JSON")
    parser.add_argument("--log-level", default="warning", help="the node's (shown with NANOKUBE_BENCH_LOG=1)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (for a look afterwards)")
    args = parser.parse_args()
    if args.quick:
        args.pods, args.runc_runs = 40, 10
    why = missing_prerequisites()
    if why:
        emit({"bench": "pod_startup", "skipped": why})
        return 0
    work = Path(tempfile.mkdtemp(prefix="nanokube-pod-bench-"))
    data_dir = work / "data"
    had_bridge = subprocess.run(["ip", "link", "show", args.bridge], capture_output=True).returncode == 0
    account = CpuAccount()
    server = Server(data_dir, extra=["--node", "native", "--node-bridge", args.bridge, "--node-pod-cidr",
                                     args.pod_cidr, "--node-name", args.node_name, "--log-level", args.log_level])
    try:
        rootfs, archive = build_image(work)
        runc, runc_cpu = runc_baseline(work, rootfs, args.runc_runs)
        emit({"bench": "pod_startup_runc", "what": "runc run, spawn -> first line on stdout", **latency_ms(runc),
              "cpu_ms_per_run": round(sum(runc_cpu) * 1000 / len(runc_cpu), 1), "loadavg_1m": os.getloadavg()[0]})
        import_image(data_dir, archive)
        server.start()
        if not account.adopt(server.pid):
            log("no cpuacct cgroup: node_cpu_ms_per_pod will read 0")
        log(f"nanokube up ready (pid {server.pid}); waiting for node {args.node_name}")
        asyncio.run(measure(server, args, data_dir / "node", account))
    finally:
        server.stop()
        account.remove()
        force_clean(data_dir, args.bridge, had_bridge)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    problems = server.problems()
    if problems:
        log("the server logged problems:\n" + "\n".join(problems[:20]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
