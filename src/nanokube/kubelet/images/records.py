"""The image table: which images the node has, by id, with their names, manifest, layers and config.

One JSON file (``images.json``) replaced atomically, edited only under an ``flock`` on ``lock``: the agent and
``nanokube image import|rm`` (a separate process) both write it, and readers never see half a file. An image
is keyed by its id (the config digest, as Docker and containerd report it). A name (``repo:tag`` or
``repo@digest``) points at one image; giving it to another image takes it away from the first, which stays
(``<none>`` in listings) until removed, so a running container's image never vanishes under it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nanokube.kubelet.runtime.interface import Image

from .manifest import Descriptor, ImageConfig


@dataclass(frozen=True)
class ImageRecord:
    """An image the node holds. ``id`` is ``sha256:<config digest>``; names are fully normalised."""

    id: str
    manifest_digest: str
    media_type: str
    layers: tuple[Descriptor, ...]
    diff_ids: tuple[str, ...]
    chain_ids: tuple[str, ...]
    config: ImageConfig
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    index_digest: str = ""
    size: int = 0
    pulled_at: float = 0.0
    source: str = ""  # "pull" | "import"
    config_json: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def image_ref(self) -> str:
        """What a container status's ``imageID`` shows: the first repo digest, else the id."""
        return self.repo_digests[0] if self.repo_digests else self.id

    def cri(self) -> Image:
        """The CRI record of this image (``list_images``/``image_status``)."""
        return Image(id=self.id, repo_tags=self.repo_tags, repo_digests=self.repo_digests, size=self.size)

    def blobs(self) -> set[str]:
        """Every content-store digest this image keeps alive."""
        out = {self.id, self.manifest_digest, *(d.digest for d in self.layers)}
        if self.index_digest:
            out.add(self.index_digest)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "manifest": self.manifest_digest, "mediaType": self.media_type,
                "layers": [d.to_json() for d in self.layers], "diffIDs": list(self.diff_ids),
                "chainIDs": list(self.chain_ids), "repoTags": list(self.repo_tags),
                "repoDigests": list(self.repo_digests), "index": self.index_digest, "size": self.size,
                "pulledAt": self.pulled_at, "source": self.source, "config": self.config_json}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ImageRecord:
        config_json = d.get("config") or {}
        return cls(id=d["id"], manifest_digest=d["manifest"], media_type=d.get("mediaType", ""),
                   layers=tuple(Descriptor.from_json(x) for x in d.get("layers") or ()),
                   diff_ids=tuple(d.get("diffIDs") or ()), chain_ids=tuple(d.get("chainIDs") or ()),
                   config=ImageConfig.from_json(config_json), repo_tags=tuple(d.get("repoTags") or ()),
                   repo_digests=tuple(d.get("repoDigests") or ()), index_digest=d.get("index", ""),
                   size=int(d.get("size", 0)), pulled_at=float(d.get("pulledAt", 0.0)),
                   source=d.get("source", ""), config_json=config_json)


Table = dict[str, ImageRecord]


class Records:
    """The image table on disk, with a cache that is re-read only when the file changes."""

    def __init__(self, root: Path) -> None:
        self.path = root / "images.json"
        self._lock_path = root / "lock"
        self._cache: tuple[tuple[int, int], Table] | None = None

    def load(self) -> Table:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        key = (st.st_mtime_ns, st.st_size)
        if self._cache is not None and self._cache[0] == key:
            return dict(self._cache[1])
        doc = json.loads(self.path.read_bytes() or b"{}")
        table = {d["id"]: ImageRecord.from_json(d) for d in doc.get("images", [])}
        self._cache = (key, table)
        return dict(table)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's inter-process lock (for read-modify-write of the table and for GC)."""
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def save(self, table: Table) -> None:
        """Write ``table`` atomically (call with the lock held)."""
        doc = {"images": [r.to_json() for r in sorted(table.values(), key=lambda r: r.id)]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(json.dumps(doc, indent=1).encode())
        os.replace(tmp, self.path)

    def update(self, change: Callable[[Table], None]) -> Table:
        """Apply ``change`` to the current table under the lock and save it; returns the new table."""
        with self.locked():
            table = self.load()
            change(table)
            self.save(table)
            return table


def put_image(table: Table, record: ImageRecord) -> None:
    """Add or refresh ``record``: its names move to it from whichever images had them."""
    names = set(record.repo_tags) | set(record.repo_digests)
    for image_id, other in list(table.items()):
        if image_id == record.id:
            continue
        if names & (set(other.repo_tags) | set(other.repo_digests)):
            table[image_id] = replace(other, repo_tags=tuple(t for t in other.repo_tags if t not in names),
                                      repo_digests=tuple(d for d in other.repo_digests if d not in names))
    old = table.get(record.id)
    if old is not None:
        record = replace(record, repo_tags=_union(old.repo_tags, record.repo_tags),
                         repo_digests=_union(old.repo_digests, record.repo_digests))
    table[record.id] = record


def _union(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*old, *new)))
