"""KWOK-style benchmark: simulated nodes Ready, then the Pods of Deployments Running, as seen through a watch.

In one process (an ``InProcessCluster``: the real API server semantics over the memory store), prints one JSON
line per phase. Two modes share the node phase:

* ``--mode deployments`` (the default): the control plane of ``nanokube up --sim-nodes N``: the whole
  ``ControllerManager`` (``default_controllers()``, under its Lease) and the scheduler (``run_scheduler``, under
  the ``kube-scheduler`` Lease) beside the ``Simulator``; ``--controllers workload`` runs only the Deployment,
  ReplicaSet and garbage-collector controllers instead. D Deployments of R replicas are created; the clock
  stops when a watch on pods has seen all D × R Running and Ready, and a watch on Deployments all reporting
  ``availableReplicas == replicas`` for their generation;
* ``--mode bound``: P Pods created already bound round-robin (``spec.nodeName``), no controllers nor
  scheduler: the simulator alone.

Lines: ``kwok_floor`` (in a fresh cluster, the fewest API writes the end state needs, made directly: per node a
create, a status patch and a Lease; per Pod a create and one Running status patch), ``kwok_nodes`` (all N
Nodes Ready, then the Lease renewal rate and CPU share once they settle), ``kwok_deployments`` or
``kwok_pods`` (seconds to Running, Ready and available; CPU seconds; writes), ``kwok_rss`` (VmRSS and VmHWM at
that point). ``--profile FILE`` runs cProfile over the Pod phase only, dumps it to FILE and prints the top
functions to stderr.

KWOK's CI gate is 60 s for each of nodes and pods; nanokube's target is 30 s each at 5,000 nodes / 10,000 Pods.
Usage: ``python bench/kwok_bench.py [--quick] [--mode deployments|bound] [--nodes N] [--deployments D]
[--replicas R] [--pods P] [--controllers all|workload] [--start-delay S] [--events] [--profile FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nanokube.cmd.cluster import run_scheduler
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.deployment import DeploymentController
from nanokube.controllers.gc import GarbageCollector
from nanokube.controllers.manager import ControllerFactory, ControllerManager, default_controllers
from nanokube.controllers.replicaset import ReplicaSetController
from nanokube.kubelet.node import healthy_conditions, lease_object, node_object, node_status
from nanokube.kubelet.sim import SimSettings, Simulator, node_config
from nanokube.util.timeutil import rfc3339, rfc3339_micro

JSON = dict[str, Any]
TARGET_S = 30.0


def emit(result: JSON) -> None:
    print(json.dumps(result), flush=True)


def log(message: str) -> None:
    print(f"kwok_bench: {message}", file=sys.stderr, flush=True)


def rss_mib() -> tuple[float, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def pod_spec() -> JSON:
    return {"containers": [{"name": "web", "image": "nginx:1.27", "resources": {"requests": {"cpu": "10m"}}}]}


def pod_body(index: int, node: str) -> JSON:
    return {"metadata": {"name": f"pod-{index}", "labels": {"app": "bench"}}, "spec": {"nodeName": node, **pod_spec()}}


def deployment_body(index: int, replicas: int) -> JSON:
    labels = {"app": f"bench-{index}"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"bench-{index}"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec()}}}


def is_ready_node(node: JSON) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def is_scheduled(pod: JSON) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


def is_running(pod: JSON) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


def is_ready_pod(pod: JSON) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def is_available_deployment(d: JSON) -> bool:
    """Every replica available, as observed for the current generation (what ``rollout status`` waits for)."""
    status, want = d.get("status") or {}, (d.get("spec") or {}).get("replicas", 1)
    return (status.get("observedGeneration", 0) >= d["metadata"].get("generation", 0)
            and status.get("availableReplicas", 0) == want and status.get("updatedReplicas", 0) == want
            and status.get("replicas", 0) == want)


async def watch_until(cluster: InProcessCluster, resource: tuple[str, str, str], namespace: str, want: int,
                      tests: dict[str, Callable[[JSON], bool]], started: float) -> dict[str, float]:
    """Seconds from ``started`` until ``want`` objects pass each test, seen through list + watch."""
    res = cluster.resource(*resource)
    listed = await cluster.client.list(res, namespace)
    passing: dict[str, set[str]] = {name: set() for name in tests}
    reached: dict[str, float] = {}

    def see(obj: JSON) -> None:
        key = obj["metadata"]["name"]
        for name, test in tests.items():
            if test(obj):
                passing[name].add(key)
            else:
                passing[name].discard(key)
            if name not in reached and len(passing[name]) >= want:
                reached[name] = time.perf_counter() - started

    for obj in listed.items:
        see(obj)
    if len(reached) < len(tests):
        async for event in cluster.client.watch(res, namespace, resource_version=listed.resource_version):
            if event.type in ("ADDED", "MODIFIED"):
                see(event.object)
            if len(reached) == len(tests):
                break
    return reached


@contextlib.contextmanager
def write_tally(cluster: InProcessCluster) -> Iterator[Counter[str]]:
    """Every store write in the block, counted as ``plural:EVENT`` (the store's event dispatch is wrapped)."""
    hub: Any = cluster.store._hub
    dispatch = hub.dispatch
    tally: Counter[str] = Counter()

    def counting(event: Any) -> None:
        tally[f"{event.key.split('/')[2]}:{event.type}"] += 1
        dispatch(event)

    hub.dispatch = counting
    try:
        yield tally
    finally:
        hub.dispatch = dispatch


@contextlib.contextmanager
def profiled(path: str | None, top: int = 30) -> Iterator[None]:
    """cProfile over the block when ``path`` is set: dumped there, the top ``top`` by own time to stderr."""
    if not path:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(path)
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        print(out.getvalue(), file=sys.stderr, flush=True)


async def floor(nodes: int, pods: int) -> JSON:
    """The same end state written directly: the cost of the API writes alone."""
    async with InProcessCluster(window=100_000) as cluster:
        c = cluster.client
        nres, lres = cluster.resource("", "v1", "nodes"), cluster.resource("coordination.k8s.io", "v1", "leases")
        pres = cluster.resource("", "v1", "pods")
        settings = SimSettings(nodes=nodes)
        started = time.perf_counter()
        for i in range(nodes):
            config = node_config(f"sim-node-{i}", i, settings)
            await c.create(nres, "", node_object(config))
            await c.patch(nres, "", config.name, {"status": node_status(config, healthy_conditions(rfc3339()))},
                          patch_type="strategic", subresource="status")
            await c.create(lres, "kube-node-lease", lease_object(config.name, "", 40, rfc3339_micro()))
        nodes_s = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(pods):
            await c.create(pres, "default", pod_body(i, f"sim-node-{i % nodes}"))
            status = {"phase": "Running", "podIP": "10.42.0.2", "hostIP": "172.30.0.1",
                      "conditions": [{"type": t, "status": "True", "lastTransitionTime": rfc3339()}
                                     for t in ("Initialized", "Ready", "ContainersReady")],
                      "containerStatuses": [{"name": "web", "image": "nginx:1.27", "imageID": "", "ready": True,
                                             "restartCount": 0, "state": {"running": {"startedAt": rfc3339()}}}]}
            await c.patch(pres, "default", f"pod-{i}", {"status": status}, patch_type="strategic",
                          subresource="status")
        pods_s = time.perf_counter() - started
    return {"bench": "kwok_floor", "nodes": nodes, "pods": pods, "nodes_s": round(nodes_s, 2),
            "pods_s": round(pods_s, 2)}


def controller_factories(which: str) -> list[ControllerFactory]:
    """``all``: what ``nanokube up`` runs; ``workload``: only what Deployments need to make and keep Pods."""
    if which == "all":
        return default_controllers()
    return [GarbageCollector, ReplicaSetController, DeploymentController]


def control_plane(cluster: InProcessCluster, args: argparse.Namespace, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """The components ``ControlPlane.run`` starts after the API server, wired the same way."""
    if args.mode != "deployments":
        return []
    manager = ControllerManager(cluster.client, controller_factories(args.controllers))
    return [asyncio.create_task(manager.run(stop=stop), name="controllers"),
            asyncio.create_task(run_scheduler(cluster.client, manager.identity, stop), name="scheduler")]


async def nodes_phase(cluster: InProcessCluster, sim: Simulator, args: argparse.Namespace, cpu0: float,
                      started: float) -> None:
    reached = await watch_until(cluster, ("", "v1", "nodes"), "", args.nodes, {"ready": is_ready_node}, started)
    nodes_s = reached["ready"]
    cpu = time.process_time() - cpu0
    renewals0, cpu0, t0 = sim.heartbeat.renewals, time.process_time(), time.perf_counter()
    await asyncio.sleep(args.settle)
    span = time.perf_counter() - t0
    emit({"bench": "kwok_nodes", "mode": args.mode, "nodes": args.nodes, "ready_s": round(nodes_s, 2),
          "cpu_s": round(cpu, 2), "target_s": TARGET_S, "ok": nodes_s < TARGET_S,
          "steady_lease_renewals_per_s": round((sim.heartbeat.renewals - renewals0) / span, 1),
          "steady_cpu_share": round((time.process_time() - cpu0) / span, 3)})
    log(f"{args.nodes} nodes ready in {nodes_s:.2f}s")


async def bound_pods_phase(cluster: InProcessCluster, sim: Simulator, args: argparse.Namespace) -> None:
    pods = cluster.resource("", "v1", "pods")
    writes0, cpu0, started = sim.status.writes, time.process_time(), time.perf_counter()
    waiter = asyncio.create_task(watch_until(cluster, ("", "v1", "pods"), "default", args.pods,
                                             {"running": is_running, "ready": is_ready_pod}, started))

    async def create(chunk: range) -> None:
        for i in chunk:
            await cluster.client.create(pods, "default", pod_body(i, f"sim-node-{i % args.nodes}"))

    step = max(args.pods // 32, 1)
    await asyncio.gather(*(create(range(i, min(i + step, args.pods))) for i in range(0, args.pods, step)))
    created_s = time.perf_counter() - started
    reached = await waiter
    emit({"bench": "kwok_pods", "nodes": args.nodes, "pods": args.pods, "created_s": round(created_s, 2),
          "running_s": round(reached["running"], 2), "ready_s": round(reached["ready"], 2),
          "cpu_s": round(time.process_time() - cpu0, 2), "status_writes": sim.status.writes - writes0,
          "start_delay_s": [0.0, args.start_delay], "events": args.events, "target_s": TARGET_S,
          "ok": reached["running"] < TARGET_S})
    log(f"{args.pods} pods running in {reached['running']:.2f}s")


async def deployments_phase(cluster: InProcessCluster, sim: Simulator, args: argparse.Namespace) -> None:
    deployments = cluster.resource("apps", "v1", "deployments")
    pods = args.deployments * args.replicas
    writes0, cpu0, started = sim.status.writes, time.process_time(), time.perf_counter()
    milestones: dict[str, Callable[[JSON], bool]] = {
        "created": lambda pod: True, "scheduled": is_scheduled, "running": is_running, "ready": is_ready_pod}
    pod_waiter = asyncio.create_task(watch_until(cluster, ("", "v1", "pods"), "default", pods, milestones,
                                                 started))
    d_waiter = asyncio.create_task(watch_until(cluster, ("apps", "v1", "deployments"), "default",
                                               args.deployments, {"available": is_available_deployment}, started))
    with write_tally(cluster) as tally:
        for i in range(args.deployments):
            await cluster.client.create(deployments, "default", deployment_body(i, args.replicas))
        reached = await pod_waiter
        done = await d_waiter
    total = max(reached["ready"], done["available"])
    cpu = time.process_time() - cpu0
    emit({"bench": "kwok_deployments", "controllers": args.controllers, "nodes": args.nodes,
          "deployments": args.deployments, "replicas": args.replicas, "pods": pods,
          "created_s": round(reached["created"], 2), "scheduled_s": round(reached["scheduled"], 2),
          "running_s": round(reached["running"], 2), "ready_s": round(reached["ready"], 2),
          "available_s": round(done["available"], 2), "cpu_s": round(cpu, 2),
          "cpu_share": round(cpu / total, 2), "store_writes": sum(tally.values()),
          "status_writes": sim.status.writes - writes0, "start_delay_s": [0.0, args.start_delay],
          "events": args.events, "target_s": TARGET_S, "ok": total < TARGET_S,
          "writes_by_kind": dict(tally.most_common())})
    log(f"{pods} pods of {args.deployments} deployments running in {reached['running']:.2f}s, "
        f"all available in {done['available']:.2f}s")


async def simulated(args: argparse.Namespace) -> None:
    settings = SimSettings(nodes=args.nodes, pod_start_delay=(0.0, args.start_delay), events=args.events, seed=1)
    # ``nanokube up`` keeps a watch history of 10,000 events (``--watch-history``); the bound mode kept its own.
    async with InProcessCluster(window=10_000 if args.mode == "deployments" else 100_000) as cluster:
        stop = asyncio.Event()
        cpu0, started = time.process_time(), time.perf_counter()
        tasks = control_plane(cluster, args, stop)
        sim = Simulator(cluster.client, settings)
        tasks.append(asyncio.create_task(sim.run(stop=stop), name="simulator"))
        await nodes_phase(cluster, sim, args, cpu0, started)
        with profiled(args.profile):
            if args.mode == "deployments":
                await deployments_phase(cluster, sim, args)
            else:
                await bound_pods_phase(cluster, sim, args)
        rss, peak = rss_mib()
        emit({"bench": "kwok_rss", "mode": args.mode, "nodes": args.nodes,
              "pods": args.deployments * args.replicas if args.mode == "deployments" else args.pods,
              "rss_mib": round(rss, 1), "peak_mib": round(peak, 1)})
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 nodes, 1,000 pods (4 × 250)")
    parser.add_argument("--mode", choices=("deployments", "bound"), default="deployments")
    parser.add_argument("--controllers", choices=("all", "workload"), default="all",
                        help="deployments mode: every controller of nanokube up, or Deployment+ReplicaSet+GC")
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--deployments", type=int, default=40)
    parser.add_argument("--replicas", type=int, default=250)
    parser.add_argument("--pods", type=int, default=10000, help="bound mode: pods created already bound")
    parser.add_argument("--start-delay", type=float, default=1.0, help="ContainerCreating: uniform 0..S seconds")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds of steady heartbeats measured")
    parser.add_argument("--events", action="store_true", help="record kubelet Events (off, like KWOK)")
    parser.add_argument("--no-floor", action="store_true", help="skip the direct-write baseline")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the pod phase into FILE (pstats)")
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.pods, args.deployments, args.settle = 500, 1000, 4, 3.0
    pods = args.deployments * args.replicas if args.mode == "deployments" else args.pods
    if not args.no_floor:
        emit(asyncio.run(floor(args.nodes, pods)))
    asyncio.run(simulated(args))


if __name__ == "__main__":
    main()
