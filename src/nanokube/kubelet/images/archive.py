"""Reading image archives: ``docker save`` tarballs and OCI image layouts (as a tarball or a directory).

Both end the same way: every blob an image needs is copied into the content store (verified against its
digest where the archive names one, so a corrupt archive is refused) and the caller gets ``Found`` entries
(the manifest to register and the names to give it). A docker-archive carries no manifest of its own, so one
is written for it (Docker schema2, as ``docker load`` would have pushed it). Blocking: run it in a thread.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .content import ContentStore
from .manifest import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    Index,
    Manifest,
    ManifestError,
    Platform,
    parse_document,
    select_platform,
)
from .refs import InvalidReference, parse

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
_BARE_TAG = re.compile(r"[\w][\w.-]{0,127}")


@dataclass(frozen=True)
class Found:
    """One image of an archive, its blobs already in the content store."""

    manifest_digest: str
    manifest: Manifest
    names: tuple[str, ...]


class _Source:
    """Files of an archive: members of a tarball, or files under a directory (an unpacked OCI layout)."""

    def __init__(self, path: Path) -> None:
        self.dir = path if path.is_dir() else None
        self.tar = None if self.dir else tarfile.open(path, "r:*")  # noqa: SIM115 (closed by close())
        self.members = {} if self.tar is None else {
            os.path.normpath(m.name): m for m in self.tar.getmembers()}

    def has(self, name: str) -> bool:
        if self.dir is not None:
            return (self.dir / name).is_file()
        return os.path.normpath(name) in self.members

    def open(self, name: str) -> IO[bytes]:
        if self.dir is not None:
            return (self.dir / name).open("rb")
        assert self.tar is not None
        member = self.members.get(os.path.normpath(name))
        f = self.tar.extractfile(member) if member is not None else None
        if f is None:
            raise ManifestError(f"archive has no file {name!r}")
        return f

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()


def read_archive(path: Path, content: ContentStore, platform: Platform, default_repo: str) -> list[Found]:
    """Copy the images of ``path`` into ``content``; ``default_repo`` names OCI entries that only carry a tag."""
    try:
        src = _Source(path)
    except (tarfile.TarError, OSError) as e:
        raise ManifestError(f"cannot read image archive {path}: {e}") from e
    try:
        if src.has("manifest.json"):
            return list(_docker_archive(src, content))
        if src.has("index.json"):
            return list(_oci_layout(src, content, platform, default_repo))
        raise ManifestError(f"{path} is neither a docker-archive (manifest.json) nor an OCI layout (index.json)")
    except (tarfile.TarError, OSError, ValueError, KeyError, TypeError) as e:
        raise ManifestError(f"cannot import {path}: {e}") from e
    finally:
        src.close()


def _docker_archive(src: _Source, content: ContentStore) -> Iterator[Found]:
    entries = json.loads(src.read("manifest.json"))
    if not isinstance(entries, list):
        raise ManifestError("manifest.json of the docker-archive is not a list")
    for entry in entries:
        config = src.read(entry["Config"])
        config_digest = content.put_bytes(config)
        layers = [_copy_layer(src, name, content) for name in entry.get("Layers") or ()]
        doc = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
               "config": {"mediaType": DOCKER_CONFIG, "size": len(config), "digest": config_digest},
               "layers": layers}
        raw = json.dumps(doc, separators=(",", ":")).encode()
        digest = content.put_bytes(raw)
        manifest = parse_document(DOCKER_MANIFEST, doc)
        assert isinstance(manifest, Manifest)
        names = tuple(str(parse(t)) for t in entry.get("RepoTags") or ())
        yield Found(digest, manifest, names)


def _copy_layer(src: _Source, name: str, content: ContentStore) -> dict[str, Any]:
    expected = _digest_from_path(name)
    with src.open(name) as f:
        digest = content.put_stream(f, expected)
    with content.open(digest) as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return {"mediaType": DOCKER_LAYER_GZIP if gzipped else DOCKER_LAYER, "size": content.size(digest),
            "digest": digest}


def _digest_from_path(name: str) -> str | None:
    """Newer ``docker save`` stores layers as ``blobs/sha256/<hex>``: that path promises a digest."""
    parts = os.path.normpath(name).split("/")
    if len(parts) == 3 and parts[:2] == ["blobs", "sha256"] and len(parts[2]) == 64:
        return "sha256:" + parts[2]
    return None


def _oci_layout(src: _Source, content: ContentStore, platform: Platform, default_repo: str) -> Iterator[Found]:
    index = parse_document("application/vnd.oci.image.index.v1+json", json.loads(src.read("index.json")))
    if not isinstance(index, Index):
        raise ManifestError("index.json of the OCI layout is not an index")
    for desc in index.manifests:
        names = _names(desc.annotations, default_repo)
        data = _copy_blob(src, desc.digest, desc.size, content)
        doc = parse_document(desc.media_type, json.loads(data))
        digest = desc.digest
        if isinstance(doc, Index):
            chosen = select_platform(doc, platform)
            data = _copy_blob(src, chosen.digest, chosen.size, content)
            doc = parse_document(chosen.media_type, json.loads(data))
            digest = chosen.digest
        if not isinstance(doc, Manifest):
            raise ManifestError(f"{digest} is an index inside an index: not supported")
        _copy_blob(src, doc.config.digest, doc.config.size, content)
        for layer in doc.layers:
            _copy_blob(src, layer.digest, layer.size, content)
        yield Found(digest, doc, names)


def _copy_blob(src: _Source, digest: str, size: int, content: ContentStore) -> bytes:
    """Copy blob ``digest`` from the layout into the store (verified); returns it if small (a JSON doc)."""
    if not content.has(digest, size):
        algorithm, _, hexdigest = digest.partition(":")
        with src.open(f"blobs/{algorithm}/{hexdigest}") as f:
            content.put_stream(f, digest, size)
    return content.read_bytes(digest) if size <= (4 << 20) else b""


def _names(annotations: dict[str, str], default_repo: str) -> tuple[str, ...]:
    name = annotations.get(CONTAINERD_NAME) or annotations.get(REF_NAME) or ""
    if not name:
        return ()
    if "/" not in name and ":" not in name and "@" not in name and _BARE_TAG.fullmatch(name):
        name = f"{default_repo}:{name}"
    try:
        return (str(parse(name)),)
    except InvalidReference:
        return ()


def default_repository(path: Path) -> str:
    """A repository for OCI entries that carry only a tag: the archive's file name (``busybox.tar`` → busybox)."""
    stem = path.name
    for suffix in (".gz", ".tgz", ".tar", ".oci"):
        stem = stem.removesuffix(suffix)
    stem = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._") or "imported"
    return stem

