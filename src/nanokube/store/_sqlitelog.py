"""The on-disk log behind ``SqliteStore``: schema, startup load, group append and compaction.

Every function here is blocking and runs on the store's single worker thread, never on the event loop.

The table follows kine: one append-only row per change whose id *is* the revision::

    kv(id = revision, name, created, deleted, create_revision, prev_revision, value)

``created``/``deleted`` mark the row as an ADDED or DELETED event (neither: MODIFIED); ``prev_revision``
points at the row it supersedes, so an event's previous value is one primary-key lookup away. A
deletion row (tombstone) carries the last value stamped with the delete's revision. ``meta`` holds
``compact_rev``, the revision at or below which superseded rows are gone; it also keeps the revision
counter monotonic when compaction removed the newest rows (with ``sqlite_sequence`` as a second witness).

Durability: WAL with ``synchronous=NORMAL``. A committed transaction survives the process being killed
(``kill -9``); after a power loss or OS crash the last few commits may be lost, never corrupted.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from nanokube.store.interface import JSON, Event, EventType, KeyValue

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER,
    deleted INTEGER,
    create_revision INTEGER,
    prev_revision INTEGER,
    value BLOB
);
CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

INSERT = (
    "INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)

# Rows superseded by a row in (start, end], and tombstones in (start, end]: kine's compaction rule.
COMPACT = """
DELETE FROM kv WHERE id IN (
    SELECT prev_revision FROM kv WHERE id > ?1 AND id <= ?2 AND prev_revision != 0
    UNION
    SELECT id FROM kv WHERE id > ?1 AND id <= ?2 AND deleted != 0
)
"""

SET_META = (
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)

# (revision, key, created, deleted, create_revision, prev_revision, encoded value)
Row = tuple[int, str, int, int, int, int, bytes]


@dataclass
class Loaded:
    """What a store needs from disk at start."""

    revision: int = 0
    compacted: int = 0
    items: list[KeyValue] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)  # every revision in (floor, revision], in order
    floor: int = 0


def open_log(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the log at ``path`` in WAL mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.executescript(SCHEMA)
    return conn


def append(conn: sqlite3.Connection, rows: list[Row]) -> None:
    """Write ``rows`` in one transaction; on return they are committed."""
    conn.execute("BEGIN")
    try:
        conn.executemany(INSERT, rows)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def compact_range(conn: sqlite3.Connection, start: int, end: int) -> int:
    """Drop history superseded in (start, end] and record ``end`` as compacted; returns rows deleted."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        deleted = conn.execute(COMPACT, (start, end)).rowcount
        conn.execute(SET_META, ("compact_rev", end))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return deleted


def load(conn: sqlite3.Connection, window: int) -> Loaded:
    """Current state, revision, compaction point and the last ``window`` events of the log."""
    out = Loaded()
    out.compacted = _meta(conn, "compact_rev")
    out.revision = max(_scalar(conn, "SELECT MAX(id) FROM kv"), _sequence(conn), out.compacted)
    decoded: dict[int, JSON] = {}
    out.items = _current(conn, decoded)
    out.floor = max(out.compacted, out.revision - window)
    out.events, out.floor = _recent(conn, out.floor, out.revision, decoded)
    return out


def _current(conn: sqlite3.Connection, decoded: dict[int, JSON]) -> list[KeyValue]:
    rows = conn.execute(
        "SELECT id, name, create_revision, value FROM kv "
        "WHERE id IN (SELECT MAX(id) FROM kv GROUP BY name) AND deleted = 0"
    )
    items = []
    for revision, name, create_revision, blob in rows:
        value = orjson.loads(blob)
        decoded[revision] = value
        items.append(KeyValue(name, value, revision, create_revision))
    return items


def _recent(
    conn: sqlite3.Connection, floor: int, revision: int, decoded: dict[int, JSON]
) -> tuple[list[Event], int]:
    # Rebuild events above ``floor``. The log has a row for every revision above the compaction point;
    # should a gap appear anyway, history starts after it so a replay never skips a revision.
    rows = conn.execute(
        "SELECT k.id, k.name, k.created, k.deleted, k.value, p.id, p.value FROM kv AS k "
        "LEFT JOIN kv AS p ON p.id = k.prev_revision AND k.prev_revision != 0 "
        "WHERE k.id > ? ORDER BY k.id",
        (floor,),
    )
    events: list[Event] = []
    expected = floor + 1
    for rev, name, created, deleted, blob, prev_id, prev_blob in rows:
        if rev != expected:
            events.clear()
            floor = rev - 1
        expected = rev + 1
        value = _decode(decoded, rev, blob)
        prev = _decode(decoded, prev_id, prev_blob) if prev_id is not None else None
        kind: EventType = "ADDED" if created else "DELETED" if deleted else "MODIFIED"
        events.append(Event(kind, name, value, rev, prev=prev))
    if expected != revision + 1:
        # The newest revisions have no rows (compacted tombstones): nothing older can be replayed.
        events.clear()
        floor = revision
    return events, floor


def _decode(decoded: dict[int, JSON], revision: int, blob: bytes) -> JSON:
    value = decoded.get(revision)
    if value is None:
        value = orjson.loads(blob)
        decoded[revision] = value
    return value


def _meta(conn: sqlite3.Connection, key: str) -> int:
    return _scalar(conn, "SELECT value FROM meta WHERE key = ?", (key,))


def _sequence(conn: sqlite3.Connection) -> int:
    return _scalar(conn, "SELECT seq FROM sqlite_sequence WHERE name = 'kv'")


def _scalar(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0
