"""The measured phases of the API server benchmark, each a coroutine over HTTPS keep-alive sessions.

Every simulated client is its own ``aiohttp`` session (one keep-alive connection), warmed with one request
before timing so TLS handshakes stay out of the numbers. Watchers read the raw chunked stream and split lines
themselves: the load generator shares two cores with the server, so it must stay cheap per event. Each phase
reports the client's own CPU use beside the server's, to show which side was the bottleneck.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp
import orjson
from apiserver_harness import Credentials, Server, latency_ms

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"
JSON = dict[str, Any]


def configmap(namespace: str, name: str, size: int) -> bytes:
    """A ConfigMap of roughly ``size`` bytes once encoded."""
    value: JSON = {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": name, "namespace": namespace, "labels": {"app": "bench"}}, "data": {}}
    filler = size - len(orjson.dumps(value))
    value["data"]["payload"] = "x" * max(0, filler - 14)
    return orjson.dumps(value)


def items_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps"


class Clients:
    """A pool of sessions for one phase; ``async with`` opens, warms and closes them."""

    def __init__(self, creds: Credentials, count: int) -> None:
        context = creds.ssl_context()
        self.sessions = [creds.session(context) for _ in range(count)]

    async def __aenter__(self) -> list[aiohttp.ClientSession]:
        await asyncio.gather(*(warm(s) for s in self.sessions))
        return self.sessions

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(s.close() for s in self.sessions))


async def warm(session: aiohttp.ClientSession) -> None:
    async with session.get("/version") as resp:
        await resp.read()


async def expect(resp: aiohttp.ClientResponse, status: int) -> bytes:
    body = await resp.read()
    if resp.status != status:
        raise RuntimeError(f"{resp.method} {resp.url} answered {resp.status}, not {status}: {body[:400]!r}")
    return body


async def create_namespace(session: aiohttp.ClientSession, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    async with session.post("/api/v1/namespaces", data=orjson.dumps(body),
                            headers={"Content-Type": "application/json"}) as resp:
        await expect(resp, 201)


async def list_revision(session: aiohttp.ClientSession, namespace: str) -> str:
    async with session.get(items_path(namespace), params={"limit": "1"}) as resp:
        rv: str = orjson.loads(await expect(resp, 200))["metadata"]["resourceVersion"]
        return rv


async def post(session: aiohttp.ClientSession, namespace: str, body: bytes) -> float:
    """Create one object; returns the time the server acknowledged it (perf_counter)."""
    async with session.post(items_path(namespace), data=body,
                            headers={"Content-Type": "application/json"}) as resp:
        await expect(resp, 201)
    return time.perf_counter()


class Usage:
    """Client and server CPU seconds over a phase, as fractions of one core."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.wall = time.perf_counter()
        self.client = time.process_time()
        self.server_cpu = server.cpu_seconds()

    def done(self) -> JSON:
        wall = time.perf_counter() - self.wall
        return {"server_cpu_cores": round((self.server.cpu_seconds() - self.server_cpu) / wall, 2),
                "client_cpu_cores": round((time.process_time() - self.client) / wall, 2)}


async def creates(creds: Credentials, server: Server, namespace: str, bodies: list[bytes],
                  clients: int) -> JSON:
    """``clients`` sessions create ``bodies`` round-robin as fast as the server acknowledges."""
    latencies: list[float] = []
    async with Clients(creds, clients) as sessions:
        await create_namespace(sessions[0], namespace)

        async def client(c: int) -> None:
            for i in range(c, len(bodies), clients):
                sent = time.perf_counter()
                latencies.append(await post(sessions[c], namespace, bodies[i]) - sent)

        usage = Usage(server)
        started = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(clients)))
        elapsed = time.perf_counter() - started
        return {"creates_per_s": round(len(bodies) / elapsed), "seconds": round(elapsed, 2),
                "latency": latency_ms(latencies), **usage.done()}


async def timed_gets(session: aiohttp.ClientSession, paths: list[str], headers: dict[str, str] | None = None,
                     ) -> tuple[list[float], int]:
    """Sequential GETs, each read to the last byte; durations and the size of the last body."""
    durations: list[float] = []
    size = 0
    for path in paths:
        started = time.perf_counter()
        async with session.get(path, headers=headers) as resp:
            size = len(await expect(resp, 200))
        durations.append(time.perf_counter() - started)
    return durations, size


async def gets(creds: Credentials, namespace: str, names: list[str], count: int) -> JSON:
    """Single-object GET latency beside ``/version`` on the same connection (the HTTPS round-trip floor)."""
    rng = random.Random(1)
    paths = [f"{items_path(namespace)}/{rng.choice(names)}" for _ in range(count)]
    async with Clients(creds, 1) as (session,):
        got, _ = await timed_gets(session, paths)
        floor, _ = await timed_gets(session, ["/version"] * count)
    return {"get": latency_ms(got), "baseline_version_roundtrip": latency_ms(floor)}


async def lists(creds: Credentials, namespace: str, repeats: int) -> JSON:
    """Full LIST of a namespace as JSON and as a Table, bodies read completely."""
    out: JSON = {}
    async with Clients(creds, 1) as (session,):
        for label, headers in (("json", {"Accept": "application/json"}), ("table", {"Accept": TABLE_ACCEPT})):
            durations, size = await timed_gets(session, [items_path(namespace)] * repeats, headers)
            out[label] = {**latency_ms(durations), "bytes": size}
    return out


class Watcher:
    """One watch stream on its own session; records when each object name first arrives."""

    def __init__(self, session: aiohttp.ClientSession, path: str, expected: int, parse: bool) -> None:
        self.session = session
        self.path = path
        self.expected = expected
        self.parse = parse
        self.count = 0
        self.errors = 0
        self.arrived: dict[str, float] = {}
        self.done = asyncio.Event()
        self.opened = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self, rv: str) -> None:
        self.task = asyncio.create_task(self._run(rv))

    async def _run(self, rv: str) -> None:
        async with self.session.get(self.path, params={"watch": "true", "resourceVersion": rv}) as resp:
            if resp.status != 200:
                raise RuntimeError(f"watch answered {resp.status}: {await resp.read()!r}")
            self.opened.set()
            pending = b""
            async for chunk in resp.content.iter_any():
                now = time.perf_counter()
                if not self.parse:
                    self.count += chunk.count(b"\n")
                    self.errors += chunk.count(b'{"type":"ERROR"')
                else:
                    lines = (pending + chunk).split(b"\n")
                    pending = lines.pop()
                    for line in lines:
                        event = orjson.loads(line)
                        if event["type"] == "ERROR":
                            self.errors += 1
                        else:
                            self.arrived.setdefault(event["object"]["metadata"]["name"], now)
                    self.count = len(self.arrived)
                if self.count >= self.expected:
                    self.done.set()
        self.done.set()  # the server ended the stream (an ERROR such as 410 Expired, or a timeout)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def open_watchers(sessions: list[aiohttp.ClientSession], namespace: str, expected: int, parse: bool,
                        ) -> list[Watcher]:
    rv = await list_revision(sessions[0], namespace)
    watchers = [Watcher(s, items_path(namespace), expected, parse) for s in sessions]
    for w in watchers:
        w.start(rv)
    await asyncio.wait_for(asyncio.gather(*(w.opened.wait() for w in watchers)), 60)
    return watchers


async def paced_writes(sessions: list[aiohttp.ClientSession], namespace: str, rate: float, count: int,
                       size: int, prefix: str) -> tuple[list[float], list[float], dict[str, float]]:
    """Open-loop creates at ``rate``/s; latency from send and from the scheduled time, and ack times by name."""
    pool: asyncio.Queue[aiohttp.ClientSession] = asyncio.Queue()
    for s in sessions:
        pool.put_nowait(s)
    sent_lat: list[float] = []
    sched_lat: list[float] = []
    acked: dict[str, float] = {}

    async def one(k: int, scheduled: float) -> None:
        name = f"{prefix}-{k}"
        session = await pool.get()
        try:
            sent = time.perf_counter()
            acked[name] = ack = await post(session, namespace, configmap(namespace, name, size))
        finally:
            pool.put_nowait(session)
        sent_lat.append(ack - sent)
        sched_lat.append(ack - scheduled)

    tasks = []
    start = time.perf_counter() + 0.05
    for k in range(count):
        scheduled = start + k / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(k, scheduled)))
    await asyncio.gather(*tasks)
    return sent_lat, sched_lat, acked


async def write_under_watch(creds: Credentials, server: Server, watchers: int, rate: float, seconds: float,
                            baseline_seconds: float, size: int) -> JSON:
    """Paced writes with ``watchers`` open watches consuming every event, beside the same writes unwatched."""
    writers = 16
    out: JSON = {"watchers": watchers, "rate_per_s": rate, "seconds": seconds}
    async with Clients(creds, writers) as sessions:
        await create_namespace(sessions[0], "bench-quiet")
        sent, _, _ = await paced_writes(sessions, "bench-quiet", rate, int(rate * baseline_seconds), size, "q")
        out["baseline_no_watch_write"] = latency_ms(sent)
        await create_namespace(sessions[0], "bench-watch")
        count = int(rate * seconds)
        async with Clients(creds, watchers) as watch_sessions:
            streams = await open_watchers(watch_sessions, "bench-watch", count, parse=True)
            usage = Usage(server)
            sent, scheduled, acked = await paced_writes(sessions, "bench-watch", rate, count, size, "w")
            try:
                await asyncio.wait_for(asyncio.gather(*(w.done.wait() for w in streams)), 30)
            except TimeoutError:
                pass
            out.update(usage.done())
            out["watch_errors"] = sum(w.errors for w in streams)
            for w in streams:
                await w.stop()
    lag_ack = [max(0.0, t - acked[n]) for w in streams for n, t in w.arrived.items() if n in acked]
    early = sum(1 for w in streams for n, t in w.arrived.items() if n in acked and t < acked[n])
    delivered = sum(len(w.arrived) for w in streams)
    out.update({"write": latency_ms(sent), "write_from_schedule": latency_ms(scheduled),
                "watch_lag_after_ack": latency_ms(lag_ack), "events_before_ack_fraction":
                round(early / max(1, delivered), 3), "events_missing": watchers * count - delivered})
    return out


async def fanout(creds: Credentials, server: Server, watcher_counts: list[int], events: int, size: int,
                 ) -> list[JSON]:
    """Events/s delivered to N watchers while 16 clients create ``events`` objects as fast as they can."""
    results = []
    async with Clients(creds, 16) as writers:
        for n in watcher_counts:
            namespace = f"bench-fan-{n}"
            await create_namespace(writers[0], namespace)
            async with Clients(creds, n) as watch_sessions:
                streams = await open_watchers(watch_sessions, namespace, events, parse=False)
                bodies = [configmap(namespace, f"f-{i}", size) for i in range(events)]
                usage = Usage(server)
                started = time.perf_counter()
                await asyncio.gather(*(burst(writers[c], namespace, bodies[c::16]) for c in range(16)))
                write_seconds = time.perf_counter() - started
                await asyncio.wait_for(asyncio.gather(*(w.done.wait() for w in streams)), 120)
                elapsed = time.perf_counter() - started
                delivered = sum(min(w.count, events) for w in streams)
                results.append({"watchers": n, "events": events, "events_missing": n * events - delivered,
                                "watch_errors": sum(w.errors for w in streams),
                                "delivered_per_s": round(delivered / elapsed),
                                "writes_per_s": round(events / write_seconds),
                                "seconds": round(elapsed, 2), **usage.done()})
                for w in streams:
                    await w.stop()
    return results


async def burst(session: aiohttp.ClientSession, namespace: str, bodies: list[bytes]) -> None:
    for body in bodies:
        await post(session, namespace, body)

