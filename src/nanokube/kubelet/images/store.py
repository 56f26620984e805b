"""``ImageStore``: the node's images — pull, import, list, remove, and what the runtime needs to run one.

Layout under ``root`` (``<data-dir>/images``)::

    blobs/sha256/<hex>        manifests, configs and layer tarballs, content addressed (content.py)
    snapshots/<chain hex>/fs  one extracted layer each, in overlayfs form (unpack.py)
    images.json, lock         the image table (records.py)
    empty/                    the lower directory of an image without layers

A pull resolves the reference (an index picks this node's platform), downloads config and layers with
digest checks (layers whose snapshot already exists are not downloaded again), unpacks each layer as soon
as it has arrived, and only then records the image, so a listed image is always complete. Concurrent pulls
of one reference in this process share one download. The runtime mounts
``lowerdir=":".join(rootfs_layers(ref))`` and builds the process from ``config(ref)``. Removing the last name
of an image deletes it, then blobs and snapshots no image needs any more are collected, except snapshots an
overlay mount still uses.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

import aiohttp

from nanokube.kubelet.runtime.interface import ImagePullFailure, NotFoundFailure, RuntimeFailure

from . import archive
from .content import ContentStore
from .manifest import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    ManifestError,
    Platform,
    diff_ids,
    host,
    select_platform,
)
from .manifest import parse_document as parse_manifest
from .records import ImageRecord, Records, Table, put_image
from .refs import Reference, is_image_id, parse
from .registry import Credentials, CredentialsFor, ProgressCallback, PullProgress, RegistryClient
from .unpack import Snapshots, chain_ids

log = logging.getLogger(__name__)

PullPolicy = Literal["Always", "IfNotPresent", "Never"]
_HEX_PREFIX = re.compile(r"(?:sha256:)?([0-9a-f]{1,64})")
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)


class ImageNotFound(NotFoundFailure):
    """No image of the node answers to that reference."""


class ErrImageNeverPull(ImagePullFailure):
    reason = "ErrImageNeverPull"


class ImageInUse(RuntimeFailure):
    """The image's layers are mounted by a container (remove it first, or ``force``)."""


class ImagePullError(ImagePullFailure):
    """A pull failed; the cause (``NotFound``, ``Unauthorized``, ``DigestMismatch``...) is ``__cause__``."""


class ImageStore:
    """The node's images under ``root``; see the module docstring for the layout."""

    def __init__(self, root: Path, *, plain_http: tuple[str, ...] = (), credentials: CredentialsFor | None = None,
                 platform: Platform | None = None, max_concurrent_downloads: int = 3) -> None:
        self.root = root
        self.content = ContentStore(root)
        self.snapshots = Snapshots(root / "snapshots")
        self.records = Records(root)
        self.empty_dir = root / "empty"
        self.empty_dir.mkdir(exist_ok=True)
        self.platform = platform or host()
        self._plain_http = plain_http
        self._credentials = credentials
        self._downloads = asyncio.Semaphore(max_concurrent_downloads)
        self._inflight: dict[str, asyncio.Task[ImageRecord]] = {}
        self._active: set[str] = set()  # digests and chain ids a pull of this process is writing

    # -- reading ------------------------------------------------------------------------------------------

    def list(self) -> builtins.list[ImageRecord]:
        """Every image, named ones first, by name."""
        return sorted(self.records.load().values(), key=lambda r: (not r.repo_tags, r.repo_tags, r.id))

    def get(self, ref: str) -> ImageRecord | None:
        """The image ``ref`` names: a full or short name (``busybox`` = ``docker.io/library/busybox:latest``),
        ``name@digest``, an id ``sha256:<hex>``, or a unique prefix of an id's hex."""
        return _resolve(self.records.load(), ref)[0]

    def require(self, ref: str) -> ImageRecord:
        record = self.get(ref)
        if record is None:
            raise ImageNotFound(f"image {ref!r} not found")
        return record

    def rootfs_layers(self, ref: str) -> builtins.list[Path]:
        """Overlay lower directories of ``ref``, top layer first (``lowerdir=":".join(...)``)."""
        record = self.require(ref)
        if not record.chain_ids:
            return [self.empty_dir]
        paths = [self.snapshots.path(c) for c in reversed(record.chain_ids)]
        missing = [p for p in paths if not p.is_dir()]
        if missing:
            raise ImageNotFound(f"image {ref!r} is missing layer snapshot {missing[0]}: pull it again")
        return paths

    def config(self, ref: str) -> ImageConfig:
        """Entrypoint, Cmd, Env, WorkingDir, User... of ``ref`` for the runtime to merge with the container."""
        return self.require(ref).config

    # -- pulling ------------------------------------------------------------------------------------------

    async def pull(self, ref: str, policy: PullPolicy = "IfNotPresent", progress: ProgressCallback | None = None,
                   credentials: Credentials | None = None) -> ImageRecord:
        """Make ``ref`` present by ``policy`` (Kubernetes' imagePullPolicy) and return it.

        Raises ``InvalidReference`` (InvalidImageName), ``ErrImageNeverPull``, or ``ImagePullError``
        (ErrImagePull) whose ``__cause__`` tells what went wrong.
        """
        reference = parse(ref)
        if policy != "Always":
            existing = self.get(str(reference))
            if existing is not None:
                return existing
            if policy == "Never":
                raise ErrImageNeverPull(f'Container image "{ref}" is not present with pull policy of Never')
        key = str(reference)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._pull_wrapped(reference, progress, credentials))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _pull_wrapped(self, ref: Reference, progress: ProgressCallback | None,
                            credentials: Credentials | None) -> ImageRecord:
        try:
            return await self._pull(ref, progress, credentials)
        except (RuntimeFailure, OSError, ValueError, TimeoutError, aiohttp.ClientError) as e:
            raise ImagePullError(f'failed to pull and unpack image "{ref}": {e}') from e

    async def _pull(self, ref: Reference, progress: ProgressCallback | None,
                    credentials: Credentials | None) -> ImageRecord:
        _report(progress, PullProgress(str(ref), "resolving"))
        creds = self._credentials_for(ref, credentials)
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
            client = RegistryClient(session, plain_http=self._plain_http, credentials=creds)
            top = await client.get_manifest(ref)
            doc = parse_manifest(top.media_type, _json(top.data))
            index_digest, fetched = "", top
            if isinstance(doc, Index):
                index_digest = top.digest
                chosen = select_platform(doc, self.platform)
                fetched = await client.get_manifest(ref, chosen.digest)
                doc = parse_manifest(fetched.media_type or chosen.media_type, _json(fetched.data))
            if not isinstance(doc, Manifest):
                raise ManifestError(f"{ref}: an index inside an index is not supported")
            await asyncio.to_thread(self._put_docs, top.data, fetched.data)
            await client.fetch_blob(ref, doc.config, self.content, progress)
            config_json = await asyncio.to_thread(self.content.read_json, doc.config.digest)
            ids = _checked_diff_ids(config_json, doc)
            chains = chain_ids(ids)
            guard = {doc.config.digest, *chains, *(d.digest for d in doc.layers)}
            self._active |= guard
            try:
                async with asyncio.TaskGroup() as tg:
                    for desc, diff_id, chain in zip(doc.layers, ids, chains, strict=True):
                        tg.create_task(self._layer(client, ref, desc, diff_id, chain, progress))
            except BaseExceptionGroup as group:
                raise _first(group) from None  # the first layer failure, as if the layers ran in turn
            finally:
                self._active -= guard
        record = self._record(fetched.digest, doc, config_json, ids, chains, source="pull",
                              tags=(ref.tagged(),) if ref.tag else (),
                              digests=(f"{ref.name}@{index_digest or fetched.digest}",),
                              index_digest=index_digest)
        await asyncio.to_thread(self.records.update, lambda table: put_image(table, record))
        _report(progress, PullProgress(str(ref), "done", record.id, record.size, record.size))
        return self.require(record.id)

    def _put_docs(self, *docs: bytes) -> None:
        for data in docs:
            self.content.put_bytes(data)

    async def _layer(self, client: RegistryClient, ref: Reference, desc: Descriptor, diff_id: str, chain: str,
                     progress: ProgressCallback | None) -> None:
        if self.snapshots.has(chain):
            _report(progress, PullProgress(str(ref), "unpacking", desc.digest, desc.size, desc.size))
            return
        async with self._downloads:
            await client.fetch_blob(ref, desc, self.content, progress)
        _report(progress, PullProgress(str(ref), "unpacking", desc.digest, 0, desc.size))
        await asyncio.to_thread(self.snapshots.create, chain, self.content.path(desc.digest), diff_id)
        _report(progress, PullProgress(str(ref), "unpacking", desc.digest, desc.size, desc.size))

    def _credentials_for(self, ref: Reference, given: Credentials | None) -> CredentialsFor:
        fallback = self._credentials or (lambda host: None)
        if given is None:
            return fallback
        return lambda host: given if host == ref.registry_host else fallback(host)

    # -- importing ----------------------------------------------------------------------------------------

    async def import_archive(self, path: Path, name: str | None = None) -> builtins.list[ImageRecord]:
        """Load a docker-archive (``docker save``) or OCI archive/layout; returns the images it held.

        ``name`` is the repository for OCI entries that carry only a tag (default: the file's name).
        """
        return await asyncio.to_thread(self._import, path, name)

    def _import(self, path: Path, name: str | None) -> builtins.list[ImageRecord]:
        repo = name or archive.default_repository(path)
        found = archive.read_archive(path, self.content, self.platform, repo)
        records: builtins.list[ImageRecord] = []
        for item in found:
            config_json = self.content.read_json(item.manifest.config.digest)
            ids = _checked_diff_ids(config_json, item.manifest)
            chains = chain_ids(ids)
            for desc, diff_id, chain in zip(item.manifest.layers, ids, chains, strict=True):
                self.snapshots.create(chain, self.content.path(desc.digest), diff_id)
            records.append(self._record(item.manifest_digest, item.manifest, config_json, ids, chains,
                                        source="import", tags=item.names, digests=(), index_digest=""))

        def change(table: Table) -> None:
            for record in records:
                put_image(table, record)

        table = self.records.update(change)
        return [table[r.id] for r in records]

    # -- removing -----------------------------------------------------------------------------------------

    async def remove(self, ref: str, *, force: bool = False) -> builtins.list[str]:
        """Remove the name ``ref`` (the whole image when given its id, or when its last tag goes).

        Returns Docker-style lines (``Untagged: ...``, ``Deleted: sha256:...``). Raises ``ImageNotFound``, or
        ``ImageInUse`` when a container's overlay still uses the image (unless ``force``).
        """
        return await asyncio.to_thread(self._remove, ref, force, frozenset(self._active))

    def _remove(self, ref: str, force: bool, active: frozenset[str]) -> builtins.list[str]:
        with self.records.locked():
            table = self.records.load()
            record, name = _resolve(table, ref)
            if record is None:
                raise ImageNotFound(f"image {ref!r} not found")
            lines: builtins.list[str] = []
            if name is not None:
                lines.append(f"Untagged: {name}")
                record = replace(record, repo_tags=tuple(t for t in record.repo_tags if t != name),
                                 repo_digests=tuple(d for d in record.repo_digests if d != name))
            if name is None or not record.repo_tags:
                if not force and record.chain_ids and record.chain_ids[-1] in self.snapshots.mounted():
                    raise ImageInUse(f"image {ref!r} ({record.id}) is in use by a running container")
                lines += [f"Untagged: {n}" for n in (*record.repo_tags, *record.repo_digests)]
                lines.append(f"Deleted: {record.id}")
                del table[record.id]
            else:
                table[record.id] = record
            self.records.save(table)
            self._collect(table, active)
        return lines

    def _collect(self, table: Table, active: frozenset[str]) -> None:
        """Delete blobs and snapshots no image references (call with the lock held); ``active`` are digests
        and chain ids a pull of this process is still writing."""
        blobs: set[str] = set(active)
        chains: set[str] = set(active) | self.snapshots.mounted()
        for record in table.values():
            blobs |= record.blobs()
            chains |= set(record.chain_ids)
        for digest in list(self.content.digests()):
            if digest not in blobs:
                self.content.delete(digest)
        for chain in self.snapshots.chain_ids():
            if chain not in chains:
                self.snapshots.remove(chain)

    async def collect_garbage(self) -> None:
        """Run the collection on its own (e.g. at agent start, after a crash mid-pull)."""
        active = frozenset(self._active)

        def run() -> None:
            with self.records.locked():
                self._collect(self.records.load(), active)
                self.content.clean_ingest()
                self.snapshots.clean_tmp()
        await asyncio.to_thread(run)

    # -- helpers ------------------------------------------------------------------------------------------

    def _record(self, manifest_digest: str, manifest: Manifest, config_json: dict[str, object], ids: builtins.list[str],
                chains: builtins.list[str], *, source: str, tags: tuple[str, ...], digests: tuple[str, ...],
                index_digest: str) -> ImageRecord:
        size = manifest.config.size + sum(d.size for d in manifest.layers)
        return ImageRecord(id=manifest.config.digest, manifest_digest=manifest_digest,
                           media_type=manifest.media_type, layers=manifest.layers, diff_ids=tuple(ids),
                           chain_ids=tuple(chains), config=ImageConfig.from_json(config_json),
                           repo_tags=tags, repo_digests=digests, index_digest=index_digest, size=size,
                           pulled_at=time.time(), source=source, config_json=config_json)


def _resolve(table: Table, text: str) -> tuple[ImageRecord | None, str | None]:
    """The image ``text`` names and the name that matched (None when matched by id)."""
    if is_image_id(text):
        return table.get(text), None
    try:
        ref = parse(text)
    except RuntimeFailure:
        ref = None
    if ref is not None:
        name = f"{ref.name}@{ref.digest}" if ref.digest else ref.tagged()
        for record in table.values():
            if name in record.repo_tags or name in record.repo_digests:
                return record, name
    m = _HEX_PREFIX.fullmatch(text)
    if m:
        matches = [r for r in table.values() if r.id.partition(":")[2].startswith(m.group(1))]
        if len(matches) == 1:
            return matches[0], None
    return None, None


def _checked_diff_ids(config_json: dict[str, object], manifest: Manifest) -> list[str]:
    ids = diff_ids(config_json)
    if len(ids) != len(manifest.layers):
        raise ManifestError(f"image config lists {len(ids)} layers but the manifest has {len(manifest.layers)}")
    return ids


def _json(data: bytes) -> dict[str, object]:
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ManifestError(f"manifest is not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise ManifestError("manifest is not a JSON object")
    return doc


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    error = group.exceptions[0]
    return _first(error) if isinstance(error, BaseExceptionGroup) else error


def _report(progress: ProgressCallback | None, event: PullProgress) -> None:
    if progress is not None:
        progress(event)

