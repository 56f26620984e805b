"""Scheduler benchmark in the shape of kube's scheduler_perf SchedulingBasic, beside a bare numpy floor.

In one process (an ``InProcessCluster``: real API server semantics over the memory store), 5,000 nodes
(4 cpu / 32Gi / 110 pods, kube's node-default.yaml) are created and 1,000 pods scheduled unmeasured (initPods);
then each measured size (10,000, then 50,000 pods; pod-default.yaml: 100m cpu / 500Mi) is scheduled twice:

* ``queued``: the pods are created while no scheduler runs; a fresh ``Scheduler`` starts (its informers list
  everything: ``sync_s``) and the clock runs from ready until the last pod is bound — scheduling cycles,
  binding writes through the in-process client, the ``Scheduled`` events and the watch traffic back;
* ``streaming``: the scheduler is running and the benchmark creates the pods as fast as it can in the same
  process (as scheduler_perf's createPods op does), from the first create to the last binding — pod creation
  shares the CPU, so this is lower.

Beside them, ``floor``: a bare vectorised feasibility-and-score pass over the same node table (fit on pods/cpu/
memory, kube's rotating subset of nodes to score, LeastAllocated + BalancedAllocation, argmax, charge) for the
same number of pods, no API, no framework — how fast the arithmetic alone goes on this machine.

Prints one JSON line per measurement. Target: >= 1,000 pods/s at 5,000 nodes (kube's own thresholds for
SchedulingBasic are 680 and 810 pods/s). Usage: ``python bench/scheduler_bench.py [--quick] [--nodes N]
[--pods 10000,50000] [--modes queued,streaming] [--no-events] [--gc-freeze] [--profile FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import pstats
import sys
import time
from typing import Any

import numpy as np

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.scheduler.runtime import nodes_to_find
from nanokube.scheduler.scheduler import Scheduler, SchedulerSettings

JSON = dict[str, Any]
TARGET = 1000.0
CPU_M, MEMORY = 100, 500 * 1024 * 1024


def emit(result: JSON) -> None:
    print(json.dumps(result), flush=True)


def log(message: str) -> None:
    print(f"scheduler_bench: {message}", file=sys.stderr, flush=True)


def node(i: int) -> tuple[JSON, JSON]:
    name = f"node-{i}"
    resources = {"cpu": "4", "memory": "32Gi", "pods": "110"}
    obj = {"apiVersion": "v1", "kind": "Node",
           "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}
    status = {"capacity": resources, "allocatable": resources,
              "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}
    return obj, status


def pod(name: str) -> JSON:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}}


class Bench:
    def __init__(self, cluster: InProcessCluster, settings: SchedulerSettings) -> None:
        self.cluster = cluster
        self.settings = settings
        self.pods = cluster.resource("", "v1", "pods")
        self.nodes = cluster.resource("", "v1", "nodes")
        self.scheduler: Scheduler | None = None
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.created = 0

    async def make_nodes(self, count: int) -> float:
        started = time.perf_counter()
        for i in range(count):
            obj, status = node(i)
            await self.cluster.client.create(self.nodes, "", obj)
            await self.cluster.client.patch(self.nodes, "", obj["metadata"]["name"], {"status": status},
                                            subresource="status")
        return time.perf_counter() - started

    async def make_pods(self, count: int, prefix: str) -> float:
        started = time.perf_counter()
        for i in range(count):
            await self.cluster.client.create(self.pods, "default", pod(f"{prefix}-{i}"))
            if i % 256 == 255:
                await asyncio.sleep(0)  # let a running scheduler take its turn, as a separate client would
        self.created += count
        return time.perf_counter() - started

    async def start(self) -> float:
        started = time.perf_counter()
        self.stop = asyncio.Event()
        self.scheduler = Scheduler(self.cluster.client, self.settings)
        self.task = asyncio.create_task(self.scheduler.run(stop=self.stop))
        await self.scheduler.ready.wait()
        return time.perf_counter() - started

    async def halt(self) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task
        self.task = None

    async def bound(self, count: int) -> None:
        """Wait until the current scheduler has bound ``count`` pods."""
        assert self.scheduler is not None
        while self.scheduler.stats["scheduled"] < count:
            await asyncio.sleep(0.005)

    async def verify(self) -> int:
        listed = await self.cluster.client.list(self.pods, "default")
        return sum(1 for p in listed.items if p["spec"].get("nodeName"))


def floor(scheduler: Scheduler, pods: int) -> float:
    """pods/s of the bare arithmetic: fit, rotating subset, LeastAllocated + BalancedAllocation, argmax, charge."""
    table = scheduler.snapshot.table
    n = table.size
    alloc = table.alloc[:3, :n].copy()
    used = table.used[:3, :n].copy()
    nonzero = table.nonzero[:, :n].copy()
    values = np.array([1, CPU_M, MEMORY], np.int64)
    request = values[1:, None]
    want = nodes_to_find(0, n)
    start = 0
    began = time.perf_counter()
    for _ in range(pods):
        feasible = np.flatnonzero(((alloc - used) >= values[:, None]).all(axis=0))
        pos = int(np.searchsorted(feasible, start))
        rows = feasible[pos: pos + want]
        if rows.shape[0] < want:
            rows = np.concatenate((rows, feasible[: want - rows.shape[0]]))
        cap = alloc[1:][:, rows]
        least = ((cap - (nonzero[:, rows] + request)) * 100 // cap).sum(axis=0) // 2
        fraction = np.minimum((used[1:][:, rows] + request) / cap, 1.0)
        balanced = ((1 - np.abs(fraction[0] - fraction[1]) / 2) * 100).astype(np.int64)
        best = int(rows[int((least + balanced).argmax())])
        used[:, best] += values
        nonzero[:, best] += values[1:]
        start = (int(rows[-1]) + 1) % n
    return pods / (time.perf_counter() - began)


async def measure(bench: Bench, mode: str, count: int, nodes: int, profile: str | None) -> JSON:
    prefix = f"{mode}-{count}"
    attempts_before = bench.scheduler.stats["attempts"] if bench.scheduler is not None and mode != "queued" else 0
    profiler = cProfile.Profile() if profile else None
    if mode == "queued":
        await bench.halt()
        create_s = await bench.make_pods(count, prefix)
        sync_s = await bench.start()
        assert bench.scheduler is not None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        await bench.bound(count)
        seconds = time.perf_counter() - started
        extra: JSON = {"create_s": round(create_s, 2), "sync_s": round(sync_s, 2)}
    else:
        assert bench.scheduler is not None
        base = bench.scheduler.stats["scheduled"]
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        await bench.make_pods(count, prefix)
        await bench.bound(base + count)
        seconds = time.perf_counter() - started
        extra = {}
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(f"{profile}.{mode}.{count}")
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    assert bench.scheduler is not None
    rate = count / seconds
    floor_rate = floor(bench.scheduler, min(count, 5000))
    return {"bench": "scheduler", "case": "SchedulingBasic", "mode": mode, "nodes": nodes, "pods": count,
            "seconds": round(seconds, 2), "pods_per_s": round(rate), "floor_pods_per_s": round(floor_rate),
            "of_floor": round(rate / floor_rate, 3),
            "attempts": bench.scheduler.stats["attempts"] - attempts_before,
            "target_pods_per_s": TARGET, "meets_target": rate >= TARGET, **extra}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 nodes, 2,000 pods, queued only")
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--init-pods", type=int, default=1000)
    parser.add_argument("--pods", default="10000,50000", help="measured sizes, comma separated")
    parser.add_argument("--modes", default="queued,streaming")
    parser.add_argument("--no-events", action="store_true", help="skip the Scheduled event per pod")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.freeze() after setup and a larger gen-0 threshold (what a server process could do)")
    parser.add_argument("--profile", help="write cProfile stats of each measured phase to FILE.<mode>.<pods>")
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.init_pods, args.pods, args.modes = 1000, 200, "2000", "queued"
    if args.gc_freeze:
        gc.freeze()
        gc.set_threshold(50000, 20, 100)
    settings = SchedulerSettings(seed=1, scheduled_events=not args.no_events)
    async with InProcessCluster(window=200000) as cluster:
        bench = Bench(cluster, settings)
        nodes_s = await bench.make_nodes(args.nodes)
        log(f"{args.nodes} nodes in {nodes_s:.1f}s")
        await bench.start()
        await bench.make_pods(args.init_pods, "init")
        await bench.bound(args.init_pods)
        log(f"{args.init_pods} init pods bound")
        for count in [int(c) for c in args.pods.split(",") if c]:
            for mode in args.modes.split(","):
                result = await measure(bench, mode, count, args.nodes, args.profile)
                emit(result)
                if bench.task is None:
                    await bench.start()
        await bench.halt()
        placed = await bench.verify()
        emit({"bench": "scheduler_check", "pods_created": bench.created, "pods_bound_in_store": placed,
              "all_bound": placed == bench.created})
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
