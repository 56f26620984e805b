"""KWOK-style benchmark: simulated nodes Ready, then bound Pods Running, as seen through a watch.

In one process (an ``InProcessCluster``: the real API server semantics over the memory store), prints one JSON
line per phase:

* ``kwok_floor``: the baseline, in a fresh cluster: the fewest API writes the same outcome needs, made
  directly (per node a create, a status patch and a Lease; per Pod a create and one Running status patch);
* ``kwok_nodes``: ``Simulator`` with N nodes started → all N Nodes Ready (watch on nodes), plus the Lease
  renewal rate and CPU share once they settle;
* ``kwok_pods``: P Pods created already bound round-robin (``spec.nodeName``; the scheduler and Deployments
  are other components) → all Running, and all Ready, seen by a watch on pods; status writes made;
* ``kwok_rss``: the process's VmRSS and peak (VmHWM) with everything up.

KWOK's CI gate is 60 s for each of nodes and pods; nanokube's target is 30 s each at 5,000 nodes / 10,000 Pods.
Usage: ``python bench/kwok_bench.py [--quick] [--nodes N] [--pods P] [--start-delay S] [--events]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nanokube.cmd.inprocess import InProcessCluster
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


def pod_body(index: int, node: str) -> JSON:
    return {"metadata": {"name": f"pod-{index}", "labels": {"app": "bench"}},
            "spec": {"nodeName": node, "containers": [{"name": "web", "image": "nginx:1.27",
                                                        "resources": {"requests": {"cpu": "10m"}}}]}}


def is_ready_node(node: JSON) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def is_running(pod: JSON) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


def is_ready_pod(pod: JSON) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


async def watch_until(cluster: InProcessCluster, plural: str, namespace: str, want: int,
                      tests: dict[str, Callable[[JSON], bool]], started: float) -> dict[str, float]:
    """Seconds from ``started`` until ``want`` objects pass each test, seen through list + watch."""
    resource = cluster.resource("", "v1", plural)
    listed = await cluster.client.list(resource, namespace)
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
        async for event in cluster.client.watch(resource, namespace, resource_version=listed.resource_version):
            if event.type in ("ADDED", "MODIFIED"):
                see(event.object)
            if len(reached) == len(tests):
                break
    return reached


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


async def simulated(args: argparse.Namespace) -> None:
    settings = SimSettings(nodes=args.nodes, pod_start_delay=(0.0, args.start_delay), events=args.events,
                           seed=1)
    async with InProcessCluster(window=100_000) as cluster:
        sim = Simulator(cluster.client, settings)
        stop = asyncio.Event()
        cpu0, started = time.process_time(), time.perf_counter()
        task = asyncio.create_task(sim.run(stop=stop))
        reached = await watch_until(cluster, "nodes", "", args.nodes, {"ready": is_ready_node}, started)
        nodes_s = reached["ready"]
        cpu = time.process_time() - cpu0
        renewals0, cpu0, t0 = sim.heartbeat.renewals, time.process_time(), time.perf_counter()
        await asyncio.sleep(args.settle)
        span = time.perf_counter() - t0
        emit({"bench": "kwok_nodes", "nodes": args.nodes, "ready_s": round(nodes_s, 2), "cpu_s": round(cpu, 2),
              "target_s": TARGET_S, "ok": nodes_s < TARGET_S,
              "steady_lease_renewals_per_s": round((sim.heartbeat.renewals - renewals0) / span, 1),
              "steady_cpu_share": round((time.process_time() - cpu0) / span, 3)})
        log(f"{args.nodes} nodes ready in {nodes_s:.2f}s")

        pods = cluster.resource("", "v1", "pods")
        writes0, cpu0, started = sim.status.writes, time.process_time(), time.perf_counter()
        waiter = asyncio.create_task(watch_until(cluster, "pods", "default", args.pods,
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
        rss, peak = rss_mib()
        emit({"bench": "kwok_rss", "nodes": args.nodes, "pods": args.pods, "rss_mib": round(rss, 1),
              "peak_mib": round(peak, 1)})
        stop.set()
        await task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 nodes, 1,000 pods")
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--start-delay", type=float, default=1.0, help="ContainerCreating: uniform 0..S seconds")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds of steady heartbeats measured")
    parser.add_argument("--events", action="store_true", help="record kubelet Events (off, like KWOK)")
    parser.add_argument("--no-floor", action="store_true", help="skip the direct-write baseline")
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.pods, args.settle = 500, 1000, 3.0
    if not args.no_floor:
        emit(asyncio.run(floor(args.nodes, args.pods)))
    asyncio.run(simulated(args))


if __name__ == "__main__":
    main()
