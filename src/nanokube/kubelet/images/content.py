"""A content-addressed blob store: every manifest, config and layer lives at ``blobs/sha256/<hex>``.

A blob is only ever visible under the digest of its bytes: writers stream into ``ingest/`` while hashing, and
the file is renamed into place only when the digest (and size, when known) match what was promised. So an
interrupted download, a lying registry or a corrupt archive can never leave a wrong blob behind, and two
writers of the same blob (a pull in the agent, ``nanokube image import`` in another process) simply race to
the same rename. The calls are blocking file I/O; async callers run them in a thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from nanokube.kubelet.runtime.interface import ImagePullFailure

from .refs import is_sha256_digest

CHUNK = 1 << 20


class DigestMismatch(ImagePullFailure):
    """Bytes did not hash to the digest (or size) they were announced with."""


class BlobWriter:
    """Streams one blob into the store; ``commit`` verifies and publishes it, ``abort`` throws it away."""

    def __init__(self, store: ContentStore, expected: str | None, expected_size: int | None) -> None:
        self._store = store
        self.expected = expected
        self.expected_size = expected_size
        self._hash = hashlib.sha256()
        self.size = 0
        fd, name = tempfile.mkstemp(dir=store.ingest_dir, prefix=f"blob-{os.getpid()}-")
        self._tmp = Path(name)
        self._file: IO[bytes] = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)
        if self.expected_size is not None and self.size > self.expected_size:
            self.abort()
            raise DigestMismatch(f"blob {self.expected or ''} is larger than its announced size "
                                 f"{self.expected_size}")

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def commit(self) -> str:
        """Verify and move the blob into place; returns its digest."""
        self._file.close()
        digest = self.digest
        if self.expected is not None and digest != self.expected:
            self._tmp.unlink(missing_ok=True)
            raise DigestMismatch(f"digest mismatch: expected {self.expected}, got {digest}")
        if self.expected_size is not None and self.size != self.expected_size:
            self._tmp.unlink(missing_ok=True)
            raise DigestMismatch(f"size mismatch for {digest}: expected {self.expected_size}, got {self.size}")
        os.chmod(self._tmp, 0o444)
        os.replace(self._tmp, self._store.path(digest))
        return digest

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()


class ContentStore:
    """Blobs under ``<root>/blobs/sha256/``; partial writes under ``<root>/ingest/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        if not is_sha256_digest(digest):
            raise ValueError(f"unsupported digest {digest!r} (only sha256 is stored)")
        return self.blob_dir / digest.partition(":")[2]

    def has(self, digest: str, size: int | None = None) -> bool:
        try:
            st = self.path(digest).stat()
        except (FileNotFoundError, ValueError):
            return False
        return size is None or st.st_size == size

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def writer(self, expected: str | None = None, expected_size: int | None = None) -> BlobWriter:
        if expected is not None:
            self.path(expected)  # rejects digests the store cannot keep before any byte is written
        return BlobWriter(self, expected, expected_size)

    def put_bytes(self, data: bytes, expected: str | None = None) -> str:
        with self.writer(expected, len(data) if expected else None) as w:
            w.write(data)
            return w.commit()

    def put_stream(self, src: IO[bytes], expected: str | None = None, expected_size: int | None = None) -> str:
        """Copy a file-like object into the store, verifying as it goes."""
        with self.writer(expected, expected_size) as w:
            while chunk := src.read(CHUNK):
                w.write(chunk)
            return w.commit()

    def read_bytes(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def read_json(self, digest: str) -> Any:
        return json.loads(self.read_bytes(digest))

    def open(self, digest: str) -> IO[bytes]:
        return self.path(digest).open("rb")

    def verify(self, digest: str) -> bool:
        """Re-hash a stored blob (for ``fsck``-style checks and tests)."""
        h = hashlib.sha256()
        with self.open(digest) as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        return "sha256:" + h.hexdigest() == digest

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        for entry in os.scandir(self.blob_dir):
            yield "sha256:" + entry.name

    def clean_ingest(self) -> None:
        """Drop partial downloads whose writer process is gone (a crash mid-pull)."""
        for entry in os.scandir(self.ingest_dir):
            if not writer_alive(entry.name):
                Path(entry.path).unlink(missing_ok=True)


def writer_alive(name: str) -> bool:
    """Whether the process named in a temporary file name (``<kind>-<pid>-...``) still runs."""
    try:
        pid = int(name.split("-")[1])
        os.kill(pid, 0)
    except (IndexError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
