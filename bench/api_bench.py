"""API server benchmarks over HTTPS, each beside a baseline measured in the same run.

Starts ``nanokube up`` as a subprocess on a fresh data directory and measures, printing one JSON line each:

* ``api_creates``: ConfigMap creates/s from 16 keep-alive clients, beside raw sqlite3 inserts of the same JSON
  (WAL, synchronous=NORMAL like the store, one transaction per insert);
* ``api_get`` / ``api_list``: single GET p50/p99 beside a ``/version`` round trip on the same connection; LIST of
  1,000 and 10,000 objects as JSON and as a Table, beside reading and encoding the same rows with sqlite3+orjson;
* ``api_write_under_watch``: paced writes with 100 watches open (write latency, watch delivery lag), beside the
  same paced writes with no watch;
* ``api_watch_fanout``: events/s delivered to N watchers during a write burst, beside one watcher;
* ``api_rss``: server VmRSS idle and after the objects, beside a bare Python process with aiohttp imported;
* ``api_startup``: spawn → ``/readyz`` 200, empty and with the objects, beside interpreter and import times.

The client and the server share the machine, so phases report both processes' CPU use. Usage:
``python bench/api_bench.py [--quick] [--objects N] ...`` (``--help`` lists the knobs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from api_phases import configmap, creates, fanout, gets, lists, write_under_watch
from apiserver_harness import Credentials, Server, latency_ms

JSON = dict[str, Any]
TARGETS = {"creates_per_s": 1000, "write_p99_ms": 50, "idle_rss_mib": 80, "startup_s": 1.0}


def emit(result: JSON) -> None:
    print(json.dumps(result), flush=True)


def log(message: str) -> None:
    print(f"api_bench: {message}", file=sys.stderr, flush=True)


def raw_sqlite(path: Path, namespace: str, bodies: list[bytes], list_sizes: list[int], repeats: int) -> JSON:
    """Baselines: one-transaction-per-insert creates/s, and reading + encoding the first N rows as a list."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE objects (namespace TEXT, name TEXT, value BLOB, PRIMARY KEY (namespace, name))")
    rows = [(namespace, orjson.loads(b)["metadata"]["name"], b) for b in bodies]
    started = time.perf_counter()
    for row in rows:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO objects VALUES (?, ?, ?)", row)
        conn.execute("COMMIT")
    inserts_per_s = len(rows) / (time.perf_counter() - started)
    listing: JSON = {}
    for size in list_sizes:
        durations = []
        for _ in range(repeats):
            started = time.perf_counter()
            cursor = conn.execute("SELECT value FROM objects WHERE namespace = ? ORDER BY name LIMIT ?",
                                  (namespace, size))
            items = [orjson.loads(value) for (value,) in cursor]
            orjson.dumps({"apiVersion": "v1", "kind": "ConfigMapList", "items": items})
            durations.append(time.perf_counter() - started)
        listing[str(size)] = latency_ms(durations)
    conn.close()
    return {"tx_per_insert_per_s": round(inserts_per_s), "list_read_and_encode": listing}


def spawn_seconds(code: str, runs: int) -> float:
    """Median wall time of ``python -c code`` from spawn to exit."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def python_rss_kib(code: str) -> int:
    """VmRSS of a Python process after running ``code``."""
    probe = code + "\nfor l in open('/proc/self/status'):\n    if l.startswith('VmRSS'): print(l.split()[1])"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return int(out.strip())


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a ~30 s run")
    parser.add_argument("--objects", type=int, help="ConfigMaps created in phase 1 (default 10000, quick 2000)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--size", type=int, default=1024, help="bytes per ConfigMap as sent")
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0, help="paced writes per second under watch load")
    parser.add_argument("--watch-seconds", type=float, help="paced write duration (default 15, quick 4)")
    parser.add_argument("--fanout", default="1,10,100", help="watcher counts for fan-out; 1 is the baseline")
    parser.add_argument("--fanout-events", type=int, help="writes per fan-out run (default 4000, quick 500)")
    parser.add_argument("--profile", type=Path, help="run the server under cProfile, writing DIR/server-N.prof")
    parser.add_argument("--startup-runs", type=int, help="restarts of the empty store (default 3, quick 1)")
    args = parser.parse_args()
    quick = args.quick
    args.objects = args.objects or (2000 if quick else 10000)
    args.watch_seconds = args.watch_seconds or (4.0 if quick else 15.0)
    args.fanout_events = args.fanout_events or (500 if quick else 4000)
    args.startup_runs = args.startup_runs or (1 if quick else 3)
    args.get_count = 300 if quick else 2000
    args.list_repeats = 3 if quick else 20
    return args


def measure_startup_empty(server: Server, runs: int) -> tuple[list[float], JSON]:
    """First start (makes the PKI), then ``runs`` restarts of the empty store; idle RSS after the first."""
    first = server.start()
    time.sleep(2.0)
    idle = server.rss()
    log(f"first start {first:.3f}s, idle VmRSS {mib(idle['VmRSS'])} MiB")
    restarts = []
    for _ in range(runs):
        server.stop()
        restarts.append(server.start())
    return [first, *restarts], idle


def main() -> None:
    args = parse_args()
    log(f"sizes: {vars(args)}")
    small = min(1000, args.objects)
    with tempfile.TemporaryDirectory(prefix="nanokube-api-bench-") as tmp:
        root = Path(tmp)
        server = Server(root / "data", profile_dir=args.profile)
        try:
            run(args, root, server, small)
        finally:
            server.stop()
            report_problems(server)


def report_problems(server: Server) -> None:
    """Errors the server logged during the run (its output is otherwise discarded)."""
    problems = server.problems()
    if problems:
        log(f"the server logged {len(problems)} error/warning lines; first ones:")
        for line in problems[:10]:
            log(f"  {line}")


def run(args: argparse.Namespace, root: Path, server: Server, small: int) -> None:
    starts, idle = measure_startup_empty(server, args.startup_runs)
    creds = Credentials.load(server.data_dir / "kubeconfig")
    bodies = [configmap("bench", f"cm-{i}", args.size) for i in range(args.objects)]
    log(f"creating {args.objects} ConfigMaps with {args.clients} clients")
    created = asyncio.run(creates(creds, server, "bench", bodies, args.clients))
    after = server.rss()
    raw = raw_sqlite(root / "raw.db", "bench", bodies, [small, args.objects], args.list_repeats)
    emit({"bench": "api_creates", "objects": args.objects, "clients": args.clients,
          "value_bytes": len(bodies[0]), **created,
          "baseline_raw_sqlite_tx_per_insert_per_s": raw["tx_per_insert_per_s"],
          "vs_raw_sqlite": round(created["creates_per_s"] / raw["tx_per_insert_per_s"], 3),
          "target_creates_per_s": TARGETS["creates_per_s"],
          "pass": created["creates_per_s"] >= TARGETS["creates_per_s"]})
    server.stop()
    log("restarting on the same data directory")
    loaded = server.start()
    loaded_rss = server.rss()
    base_start = {"python_pass_s": spawn_seconds("pass", 3),
                  "python_import_aiohttp_s": spawn_seconds("import aiohttp.web, orjson, ssl", 3),
                  "python_import_nanokube_s": spawn_seconds("import nanokube.cmd.main", 3)}
    empty_start = statistics.median(starts[1:] or starts)
    emit({"bench": "api_startup", "first_start_with_pki_s": round(starts[0], 3),
          "empty_store_s": round(empty_start, 3), "empty_store_runs_s": [round(s, 3) for s in starts[1:]],
          f"with_{args.objects}_objects_s": round(loaded, 3), "server_reported_ready_with_objects": server.reported_ready,
          "baseline": base_start, "target_s": TARGETS["startup_s"],
          "pass": empty_start <= TARGETS["startup_s"] and loaded <= TARGETS["startup_s"]})
    emit({"bench": "api_rss", "idle_mib": mib(idle["VmRSS"]),
          f"after_{args.objects}_objects_mib": mib(after["VmRSS"]), "peak_mib": mib(after["VmHWM"]),
          f"restarted_with_{args.objects}_objects_mib": mib(loaded_rss["VmRSS"]),
          "baseline_python_aiohttp_mib": mib(python_rss_kib("import asyncio, ssl, aiohttp.web, orjson")),
          "baseline_python_import_nanokube_mib": mib(python_rss_kib("import nanokube.cmd.main")),
          "target_idle_mib": TARGETS["idle_rss_mib"], "pass": mib(idle["VmRSS"]) < TARGETS["idle_rss_mib"]})
    asyncio.run(reads(args, creds, server, small, raw))
    log(f"{args.watchers} watches, {args.rate:g} writes/s for {args.watch_seconds:g}s")
    watched = asyncio.run(write_under_watch(creds, server, args.watchers, args.rate, args.watch_seconds,
                                            min(5.0, args.watch_seconds), args.size))
    emit({"bench": "api_write_under_watch", **watched, "target_write_p99_ms": TARGETS["write_p99_ms"],
          "pass": watched["write"]["p99_ms"] < TARGETS["write_p99_ms"]})
    counts = [int(n) for n in args.fanout.split(",") if n]
    log(f"fan-out to {counts} watchers, {args.fanout_events} events each")
    fan = asyncio.run(fanout(creds, server, counts, args.fanout_events, args.size))
    emit({"bench": "api_watch_fanout", "runs": fan, "baseline": "the run with the fewest watchers"})


async def reads(args: argparse.Namespace, creds: Credentials, server: Server, small: int, raw: JSON) -> None:
    """GET latency, then LIST of ``small`` (own namespace) and of all objects."""
    names = [f"cm-{i}" for i in range(args.objects)]
    emit({"bench": "api_get", **await gets(creds, "bench", names, args.get_count)})
    if small < args.objects:
        await creates(creds, server, "bench-small", [configmap("bench-small", f"cm-{i}", args.size)
                                                    for i in range(small)], args.clients)
    listed: JSON = {"bench": "api_list", "repeats": args.list_repeats}
    for size, namespace in ((small, "bench-small" if small < args.objects else "bench"), (args.objects, "bench")):
        listed[str(size)] = {**await lists(creds, namespace, args.list_repeats),
                             "baseline_sqlite_read_and_encode": raw["list_read_and_encode"][str(size)]}
    emit(listed)


if __name__ == "__main__":
    main()
