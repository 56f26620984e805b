"""Service proxy: network programming latency at 1,000 Services, and ClusterIP throughput beside direct.

Everything runs in two network namespaces the benchmark creates and removes (a client side, where the
proxy's nftables table lives, and a server side joined to it by a veth pair), against an in-process API
server (memory store) with the real ``Proxier`` and ``NftablesBackend`` (libnftables on a thread that entered
the client namespace).

1. Programming latency: N Services with two endpoints each are created and programmed; then, one at a time,
   a random Service's EndpointSlice gets a new endpoint IP. Latency is the time from just before the update
   call until the sync whose rules contain the new endpoint has been committed by ``nft`` (watch delivery,
   coalescing, rule generation and the kernel transaction). p50/p99/max over the changes. Target p99 < 100 ms.
2. Throughput: with those Services programmed, a client in the client namespace opens a new TCP connection
   per request (so every request goes through conntrack and, for the VIP, NAT) to a server in the server
   namespace, via the ClusterIP and straight to the endpoint in adjacent pairs (order alternating), ``rounds``
   pairs; requests/s are medians, the ratio is the median of the pairs' ratios (other work on a shared machine
   moves both halves of a pair alike). Target ClusterIP >= 0.9 x direct.

Needs root and nft (prints a "skipped" line otherwise). Prints one JSON line.
Usage: ``python bench/proxy_bench.py [--services N] [--changes N] [--seconds S] [--rounds R] [--nft-command]
[--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.proxy.model import Endpoint, service_ports
from nanokube.proxy.nftables import NftablesBackend
from nanokube.proxy.proxier import Proxier, ProxySettings
from nanokube.proxy.rules import chain_name

CLIENT_IP, SERVER_IP, SERVER_PORT = "10.99.0.1", "10.99.0.2", 8080

SERVER = f"""
import asyncio
async def answer(reader, writer):
    await reader.read(1024)
    writer.write(b"HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
    await writer.drain()
    await reader.read(1024)  # the client closes first (TIME_WAIT on its side, as with most HTTP clients)
    writer.close()
async def main():
    server = await asyncio.start_server(answer, "{SERVER_IP}", {SERVER_PORT}, backlog=1024)
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""

CLIENT = """
import socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
done, deadline = 0, time.perf_counter() + seconds
started = time.perf_counter()
while time.perf_counter() < deadline:
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    data = b""
    while not data.endswith(b"ok"):
        data += s.recv(4096)
    s.close()
    done += 1
print(done / (time.perf_counter() - started))
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Namespaces:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.client, self.server, self.veth = f"nkpb-{tag}-c", f"nkpb-{tag}-s", f"nkpb{tag}"
        self.procs: list[subprocess.Popen[str]] = []

    def __enter__(self) -> Namespaces:
        ip("netns", "add", self.client)
        ip("netns", "add", self.server)
        ip("link", "add", f"{self.veth}a", "netns", self.client, "type", "veth", "peer", "name", f"{self.veth}b",
           "netns", self.server)
        for ns, link, addr, peer in ((self.client, f"{self.veth}a", CLIENT_IP, SERVER_IP),
                                     (self.server, f"{self.veth}b", SERVER_IP, CLIENT_IP)):
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", link)
            ip("-n", ns, "link", "set", link, "up")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "route", "add", "default", "via", peer)
        proc = subprocess.Popen(["ip", "netns", "exec", self.server, sys.executable, "-c", SERVER],
                                stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        for ns in (self.client, self.server):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def nft(self) -> tuple[str, ...]:
        return ("nsenter", f"--net=/run/netns/{self.client}", "nft")

    def requests_per_second(self, host: str, port: int, seconds: float) -> float:
        out = subprocess.run(["ip", "netns", "exec", self.client, sys.executable, "-c", CLIENT, host, str(port),
                              str(seconds)], capture_output=True, text=True, check=True, timeout=seconds + 60)
        return float(out.stdout.strip())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def slice_body(name: str, ips: list[str], port: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/service-name": name}}, "addressType": "IPv4",
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}, "nodeName": "n1"} for a in ips],
            "ports": [{"name": "", "protocol": "TCP", "port": port}]}


async def run(args: argparse.Namespace, ns: Namespaces) -> dict[str, Any]:
    async with InProcessCluster() as cluster:
        client = cluster.client
        services = cluster.resource("", "v1", "services")
        slices = cluster.resource("discovery.k8s.io", "v1", "endpointslices")
        created: dict[str, dict[str, Any]] = {}
        await client.create(cluster.resource("", "v1", "namespaces"), "", {"metadata": {"name": "bench"}})
        for i in range(args.services):
            name = f"svc-{i}"
            created[name] = await client.create(services, "bench", {
                "metadata": {"name": name}, "spec": {"ports": [{"port": 80, "targetPort": 8080}]}})
            await client.create(slices, "bench", slice_body(name, [f"10.42.{i // 250}.{i % 250 + 2}",
                                                                   f"10.41.{i // 250}.{i % 250 + 2}"], 8080))
        target = await client.create(services, "bench", {
            "metadata": {"name": "target"}, "spec": {"ports": [{"port": 80, "targetPort": SERVER_PORT}]}})
        await client.create(slices, "bench", slice_body("target", [SERVER_IP], SERVER_PORT))

        table = f"nkpb{uuid.uuid4().hex[:6]}"
        backend = (NftablesBackend(table, command=ns.nft()) if args.nft_command
                   else NftablesBackend(table, netns=f"/run/netns/{ns.client}"))
        proxier = Proxier(client, backend, ProxySettings(node_name="n1", node_ips=(CLIENT_IP,),
                                                         cluster_cidr="10.42.0.0/16"))
        waiting: dict[str, tuple[float, asyncio.Future[float]]] = {}

        def synced(changes: int) -> None:
            now = time.perf_counter()
            applied = backend.applied
            for chain, (_started, future) in list(waiting.items()):
                if applied is not None and chain in applied.chains and not future.done():
                    future.set_result(now)
                    del waiting[chain]

        proxier.on_synced = synced
        stop = asyncio.Event()
        task = asyncio.create_task(proxier.run(stop=stop))
        started = time.perf_counter()
        try:
            while backend.applied is None or len(backend.applied.service_ips) < args.services + 1:
                await asyncio.sleep(0.01)
            initial = time.perf_counter() - started
            latencies = []
            for n in range(args.changes):
                i = random.randrange(args.services)
                name = f"svc-{i}"
                new_ip = f"10.40.{n // 250}.{n % 250 + 2}"
                port = service_ports(created[name])[0]
                chain = chain_name("endpoint", port, Endpoint(new_ip, 8080))
                live = await client.get(slices, "bench", name)
                body = json.loads(json.dumps(live))
                body["endpoints"][1]["addresses"] = [new_ip]
                future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
                t0 = time.perf_counter()
                waiting[chain] = (t0, future)
                await client.update(slices, "bench", body)
                t1 = await asyncio.wait_for(future, 30)
                latencies.append((t1 - t0) * 1000)
                await asyncio.sleep(random.uniform(0, 0.02))
            # The kernel really holds the last change.
            listed = subprocess.run([*ns.nft(), "list", "chain", "ip", backend.table, chain], capture_output=True,
                                    text=True)
            assert new_ip in listed.stdout, listed.stderr
            chains = len(backend.applied.chains) if backend.applied else 0
            vip = target["spec"]["clusterIP"]
            assert ns.requests_per_second(vip, 80, 0.2) > 0
            via_vip, direct, ratios = [], [], []
            for n in range(args.rounds):  # adjacent pairs, order alternating, so both see the same load
                pair = [(vip, 80), (SERVER_IP, SERVER_PORT)]
                first, second = (pair if n % 2 == 0 else pair[::-1])
                a = ns.requests_per_second(*first, args.seconds)
                b = ns.requests_per_second(*second, args.seconds)
                v, d = (a, b) if n % 2 == 0 else (b, a)
                via_vip.append(v)
                direct.append(d)
                ratios.append(v / d)
        finally:
            stop.set()
            await task
        backend.close()
        vip_rps, direct_rps = statistics.median(via_vip), statistics.median(direct)
        return {"bench": "proxy", "services": args.services, "chains": chains, "nft": type(backend.runner).__name__,
                "initial_program_s": round(initial, 3), "changes": args.changes,
                "latency_ms_p50": round(percentile(latencies, 50), 1),
                "latency_ms_p99": round(percentile(latencies, 99), 1),
                "latency_ms_max": round(max(latencies), 1), "latency_target_ms_p99": 100,
                "clusterip_rps": round(vip_rps), "direct_rps": round(direct_rps),
                "clusterip_over_direct": round(statistics.median(ratios), 3), "throughput_target": 0.9,
                "rounds": args.rounds, "seconds_per_round": args.seconds,
                "table_removed": subprocess.run([*ns.nft(), "list", "table", "ip", backend.table],
                                                capture_output=True).returncode != 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--nft-command", action="store_true", help="apply with the nft command, not libnftables")
    parser.add_argument("--quick", action="store_true", help="200 Services, 50 changes, 4 rounds")
    args = parser.parse_args()
    if args.quick:
        args.services, args.changes, args.rounds = 200, 50, 4
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("nsenter"):
        print(json.dumps({"bench": "proxy", "skipped": "needs root, nft and nsenter"}))
        return 0
    with Namespaces() as ns:
        print(json.dumps(asyncio.run(run(args, ns))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
