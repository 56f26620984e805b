"""The store contract every backend keeps (sqlite, memory, later etcd).

A store is a revisioned key-value log in the style of etcd and kine:

* One global revision counter. Every successful create, update and delete takes the next revision; that
  number, as a string, is the object's ``metadata.resourceVersion``. The store writes it into the value it
  keeps (``value["metadata"]["resourceVersion"]``), so what a read returns is what a client sees.
* Values are JSON-shaped dicts. A dict handed to the store, and every dict it returns, is shared and must be
  treated as read-only: callers copy before they change anything (``api.objects.deep_copy``).
* Keys are ``/<group>/<resource>/<namespace>/<name>`` for namespaced objects and ``/<group>/<resource>/<name>``
  for cluster objects (``core`` stands for the empty group). A list or watch takes a prefix ending in ``/``.
* A write returns only once it is durable (it survives ``kill -9``); watchers see it only then.
* Watch streams every change under a prefix after a revision, in revision order, without gaps. A watcher
  whose buffer overflows, or who asks for a revision older than the retained history, gets ``Compacted``
  and must relist: events are never dropped silently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

JSON = dict[str, Any]
EventType = Literal["ADDED", "MODIFIED", "DELETED"]


class StoreError(Exception):
    """Base of the store's own errors; the API server translates them at its boundary."""


class KeyExists(StoreError):
    """create() found the key already present."""


class KeyNotFound(StoreError):
    """update() or delete() found no such key."""


class RevisionMismatch(StoreError):
    """The key's current mod revision is not the one the caller expected (optimistic concurrency)."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"{key}: expected revision {expected}, found {actual}")
        self.expected = expected
        self.actual = actual


class Compacted(StoreError):
    """The requested revision is older than the retained history, or a watcher fell behind."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: JSON
    mod_revision: int
    create_revision: int


@dataclass(slots=True)
class Event:
    """One change. For DELETED, ``value`` is the last state with ``resourceVersion`` set to the delete's
    revision (as the Kubernetes API server reports deletions); ``prev`` is the state before the change."""

    type: EventType
    key: str
    value: JSON
    revision: int
    prev: JSON | None = None
    # Scratch space for encoders fanning one event out to many watchers (e.g. cached JSON bytes).
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int  # the store revision the list reflects
    more: bool  # True when ``limit`` cut the list short; continue after ``items[-1].key``
    remaining: int  # how many more keys match after the page (0 when ``more`` is False)


class Watcher(Protocol):
    """An open watch. Iterate it for events; it raises ``Compacted`` if it fell behind. Close it when done."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def __anext__(self) -> Event: ...

    def close(self) -> None: ...


class Store(Protocol):
    @property
    def revision(self) -> int:
        """The newest revision written (0 for an empty store)."""

    @property
    def compacted_revision(self) -> int:
        """Watches and lists asking for revisions below this one get ``Compacted``."""

    async def start(self) -> None:
        """Open files, load state, start background tasks (flusher, compaction)."""

    async def close(self) -> None:
        """Flush and release everything; pending writes complete first."""

    async def get(self, key: str) -> KeyValue | None: ...

    async def list(self, prefix: str, *, start_after: str = "", limit: int = 0) -> ListResult:
        """Current values under ``prefix``, sorted by key, starting strictly after ``start_after``.

        ``limit`` 0 means no limit."""

    async def count(self, prefix: str) -> int: ...

    async def create(self, key: str, value: JSON) -> KeyValue:
        """Store a new key. Raises ``KeyExists``. Returns the stored value with its revision."""

    async def update(self, key: str, value: JSON, *, expected_revision: int = 0) -> KeyValue:
        """Replace a key's value. ``expected_revision`` 0 means unconditional.

        Raises ``KeyNotFound`` or ``RevisionMismatch``."""

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        """Remove a key; returns the last value stamped with the delete's revision.

        Raises ``KeyNotFound`` or ``RevisionMismatch``."""

    def watch(self, prefix: str, after_revision: int) -> Watcher:
        """Events under ``prefix`` with revision > ``after_revision``, then live ones.

        Raises ``Compacted`` at once (or on first iteration) when ``after_revision`` is older than the
        retained history. ``after_revision`` equal to ``revision`` means "only new changes"."""
