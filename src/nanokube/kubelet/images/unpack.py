"""Layer tarballs → overlayfs lower directories, one snapshot per layer, keyed by chain id.

Each layer is extracted on its own into ``snapshots/<chain-id hex>/fs`` and converted to overlayfs' native
form on the way: a whiteout ``.wh.NAME`` becomes a 0/0 character device ``NAME`` and an opaque marker
``.wh..wh..opq`` becomes the ``trusted.overlay.opaque=y`` xattr on its directory. The runtime then stacks the
snapshot directories as ``lowerdir=top:...:bottom`` and the kernel does the merging, so layers shared by many
images are stored and extracted once, and extraction never needs the layers below.

Extraction is written for hostile tarballs: names are normalised and may not climb out with ``..``, no path is
ever resolved through a symlink (a layer whose member would be written through one is refused), hard links
must point inside the same layer, and overlay's own ``trusted.overlay.*`` xattrs are not taken from archives.
The uncompressed stream is hashed as it is read and must equal the config's ``diff_id``. Blocking: run it in
a thread. Needs root (CAP_MKNOD for whiteouts, CAP_SYS_ADMIN for trusted xattrs).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import logging
import lzma
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from nanokube.kubelet.runtime.interface import ImagePullFailure

from .content import CHUNK, DigestMismatch, writer_alive

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_SNAPSHOT_RE = re.compile(r"/([0-9a-f]{64})/fs(?=[:,\s]|$)")


class UnpackError(ImagePullFailure):
    """A layer could not be extracted (corrupt, unsupported compression, or unsafe)."""


@dataclass(frozen=True)
class LayerInfo:
    diff_id: str
    size: int  # bytes of regular file content


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain ids: the first layer's is its diff id, each next one is sha256("<parent> <diff id>")."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


class _HashingReader:
    """Passes reads through while hashing everything read (tarfile's stream mode reads sequentially)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def open_layer(raw: IO[bytes]) -> IO[bytes]:
    """Wrap ``raw`` in the decompressor its magic bytes call for (gzip, zstd, bzip2, xz, or plain tar)."""
    head = raw.read(6)
    raw.seek(0)
    if head.startswith(b"\x1f\x8b"):
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        try:
            import zstandard
        except ImportError as e:
            raise UnpackError("zstd-compressed layers need the 'zstandard' package") from e
        return cast(IO[bytes], zstandard.ZstdDecompressor().stream_reader(raw))
    if head.startswith(b"BZh"):
        return cast(IO[bytes], bz2.BZ2File(raw))
    if head.startswith(b"\xfd7zXZ\x00"):
        return cast(IO[bytes], lzma.LZMAFile(raw))
    return raw


def unpack_layer(blob: Path, dest: Path, expected_diff_id: str | None = None) -> LayerInfo:
    """Extract layer ``blob`` into the new directory ``dest`` in overlayfs form; verify its diff id."""
    dest.mkdir(mode=0o755)
    with blob.open("rb") as raw:
        reader = _HashingReader(open_layer(raw))
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tf:  # type: ignore[call-overload]
                size = _Extractor(dest, tf).run()
            reader.drain()
        except (tarfile.TarError, OSError, EOFError, lzma.LZMAError) as e:
            raise UnpackError(f"failed to extract layer {blob.name}: {e}") from e
    diff_id = "sha256:" + reader.hash.hexdigest()
    if expected_diff_id is not None and diff_id != expected_diff_id:
        raise DigestMismatch(f"layer diff id mismatch: config says {expected_diff_id}, layer is {diff_id}")
    return LayerInfo(diff_id, size)


class _Extractor:
    def __init__(self, root: Path, tf: tarfile.TarFile) -> None:
        self.root = str(root)
        self.tf = tf
        self.dirs: list[tuple[str, tarfile.TarInfo]] = []
        self.size = 0
        self.as_root = os.geteuid() == 0

    def run(self) -> int:
        for member in self.tf:
            self._member(member)
        for path, member in sorted(self.dirs, key=lambda d: d[0].count("/"), reverse=True):
            self._attributes(path, member)
        return self.size

    def _member(self, m: tarfile.TarInfo) -> None:
        rel = _clean(m.name)
        if rel is None:
            return
        parent, base = posixpath.split(rel)
        parent_path = self._parent(parent)
        if base == OPAQUE_MARKER:
            os.setxattr(parent_path, OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): nothing to do
        if base.startswith(WHITEOUT_PREFIX):
            target = os.path.join(parent_path, base[len(WHITEOUT_PREFIX):])
            _remove(target)
            os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0))
            return
        target = os.path.join(parent_path, base)
        if os.path.lexists(target) and not (m.isdir() and _is_real_dir(target)):
            _remove(target)
        self._create(m, target)

    def _parent(self, parent: str) -> str:
        """The directory ``parent`` inside the layer, created as needed, never reached through a symlink."""
        path = self.root
        for part in parent.split("/") if parent else ():
            path = os.path.join(path, part)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise UnpackError(f"layer writes below {parent!r}, which is not a directory in the layer "
                                  "(symlink or file): refused")
        return path

    def _create(self, m: tarfile.TarInfo, target: str) -> None:
        if m.isdir():
            if not os.path.lexists(target):
                os.mkdir(target, 0o700)
            self.dirs.append((target, m))
            return
        if m.isreg():
            self._file(m, target)
        elif m.issym():
            os.symlink(m.linkname, target)
        elif m.islnk():
            self._hardlink(m, target)
            return
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(target, kind | 0o600, os.makedev(m.devmajor, m.devminor))
        elif m.isfifo():
            os.mkfifo(target, 0o600)
        else:
            log.debug("skipping tar member %s of type %r", m.name, m.type)
            return
        self._attributes(target, m)

    def _file(self, m: tarfile.TarInfo, target: str) -> None:
        src = self.tf.extractfile(m)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            if src is not None:
                shutil.copyfileobj(src, out, CHUNK)
        self.size += m.size

    def _hardlink(self, m: tarfile.TarInfo, target: str) -> None:
        rel = _clean(m.linkname)
        if rel is None:
            raise UnpackError(f"hard link {m.name!r} points at {m.linkname!r}: refused")
        parent, base = posixpath.split(rel)
        source = os.path.join(self._parent(parent), base)
        if not os.path.lexists(source):
            raise UnpackError(f"hard link {m.name!r} points at {m.linkname!r}, which is not in the layer")
        os.link(source, target, follow_symlinks=False)

    def _attributes(self, path: str, m: tarfile.TarInfo) -> None:
        if self.as_root:
            os.lchown(path, m.uid, m.gid)
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                self._xattr(path, key[len("SCHILY.xattr."):], value)
        if not m.issym():
            os.chmod(path, stat.S_IMODE(m.mode))
        os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)

    def _xattr(self, path: str, name: str, value: str) -> None:
        if name.startswith("trusted.overlay."):
            return
        try:
            os.setxattr(path, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
        except OSError as e:
            log.debug("cannot set xattr %s on %s: %s", name, path, e)


def _clean(name: str) -> str | None:
    """A member name relative to the layer root; None for the root itself. Refuses ``..``."""
    norm = posixpath.normpath("/" + name).lstrip("/")
    if any(part == ".." for part in name.split("/")):
        raise UnpackError(f"layer member {name!r} climbs out of the layer: refused")
    return norm or None


def _is_real_dir(path: str) -> bool:
    return stat.S_ISDIR(os.lstat(path).st_mode)


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


class Snapshots:
    """Per-layer snapshot directories under ``<root>``, named by chain id."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, chain_id: str) -> Path:
        """The directory to use as an overlay lowerdir for the layer stack ending in ``chain_id``."""
        return self.root / chain_id.partition(":")[2] / "fs"

    def has(self, chain_id: str) -> bool:
        return self.path(chain_id).is_dir()

    def create(self, chain_id: str, blob: Path, diff_id: str) -> LayerInfo | None:
        """Extract ``blob`` as the snapshot ``chain_id`` unless it exists; None when it already did."""
        if self.has(chain_id):
            return None
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f"tmp-{os.getpid()}-"))
        try:
            info = unpack_layer(blob, tmp / "fs", diff_id)
            final = self.root / chain_id.partition(":")[2]
            try:
                os.rename(tmp, final)
            except OSError:
                if not self.has(chain_id):  # lost a race with another writer: theirs is as good as ours
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
            return info
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def remove(self, chain_id: str) -> None:
        shutil.rmtree(self.root / chain_id.partition(":")[2], ignore_errors=True)

    def chain_ids(self) -> list[str]:
        return ["sha256:" + e.name for e in os.scandir(self.root) if len(e.name) == 64]

    def clean_tmp(self) -> None:
        for e in os.scandir(self.root):
            if e.name.startswith("tmp-") and not writer_alive(e.name):
                shutil.rmtree(e.path, ignore_errors=True)

    def mounted(self, mountinfo: str = "/proc/self/mountinfo") -> set[str]:
        """Chain ids of snapshots some overlay mount of this mount namespace uses as a lower directory."""
        used: set[str] = set()
        root = str(self.root)
        try:
            text = Path(mountinfo).read_text()
        except OSError:
            return used
        for line in text.splitlines():
            if " - overlay " not in line or root not in line:
                continue
            for chunk in line.split(root)[1:]:
                m = _SNAPSHOT_RE.match(chunk)
                if m:
                    used.add("sha256:" + m.group(1))
        return used
