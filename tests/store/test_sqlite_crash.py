"""Kill -9 a process mid-way through concurrent writes: every acknowledged write must survive it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from nanokube.store.sqlite import SqliteStore

WRITER = Path(__file__).with_name("crash_writer.py")
ACKS_BEFORE_KILL = 300
CRASHES = 6


def run_and_kill(db: Path, tag: str, kill_after: int) -> tuple[int, dict[str, int]]:
    """Start the writer, SIGKILL it after some acknowledgements; return its start revision and the acks."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(db), "16", tag],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    header = proc.stdout.readline().split()
    assert header[0] == "started", header
    acked: dict[str, int] = {}
    lines = 0
    try:
        for line in proc.stdout:
            lines += 1
            key, revision = line.split()
            acked[key] = max(acked.get(key, 0), int(revision))
            if lines >= kill_after:
                proc.send_signal(signal.SIGKILL)
                break
        # Whatever was printed before the kill was acknowledged too; a torn last line is not.
        for line in proc.stdout:
            if line.endswith("\n"):
                key, revision = line.split()
                acked[key] = max(acked.get(key, 0), int(revision))
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the writer finished before it was killed"
    return int(header[1]), acked


async def check_survivors(db: Path, acked: dict[str, int], probe: str) -> int:
    store = SqliteStore(db, compact_interval=0)
    await store.start()
    try:
        newest_ack = max(acked.values())
        assert store.revision >= newest_ack
        for key, revision in acked.items():
            kv = await store.get(key)
            assert kv is not None, f"acknowledged {key}@{revision} was lost"
            assert kv.mod_revision >= revision
            assert kv.value["metadata"]["resourceVersion"] == str(kv.mod_revision)
        # The counter continues where the log left off, and the log has no holes.
        before = store.revision
        kv = await store.create(f"/core/configmaps/crash/{probe}", {"metadata": {"name": probe}})
        assert kv.mod_revision == before + 1
        since = max(0, before - 50)
        watcher = store.watch("/", since)
        events = [await asyncio.wait_for(anext(watcher), 5.0) for _ in range(kv.mod_revision - since)]
        assert [e.revision for e in events] == list(range(since + 1, kv.mod_revision + 1))
        return kv.mod_revision
    finally:
        await store.close()


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    acked: dict[str, int] = {}
    revision = 0
    # Several crashes on the same file, each at a different point: every acknowledged write survives
    # all of them, and revisions keep climbing past everything seen so far.
    for run in range(CRASHES):
        start, acked_now = run_and_kill(db, f"run{run}", ACKS_BEFORE_KILL + 37 * run)
        assert start == revision
        assert len(acked_now) >= ACKS_BEFORE_KILL // 2
        assert min(acked_now.values()) > revision
        acked.update(acked_now)
        revision = asyncio.run(check_survivors(db, acked, f"probe{run}"))
