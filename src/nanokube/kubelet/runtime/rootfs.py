"""Container root filesystems: the ``host`` image, images from an ``ImageStore``, overlay mounts, users.

Every native container runs on an overlayfs: read-only lower layers and a writable ``upper`` of its own, mounted
at ``<container dir>/rootfs`` in the host's mount namespace (so it survives an agent restart) and unmounted when
the container is removed. The lower layers come from one of two places:

* The **host image**: the reference ``nanokube.io/host`` (any tag; ``host`` is accepted as a short alias) names
  a private copy-on-write view of the host's root filesystem (``lowerdir=/``), so ``python3``, ``perl`` or
  anything installed on the machine runs isolated without a registry. Writes land in the container's upper
  layer; submounts of ``/`` (``/proc``, ``/sys``, ``/run``, ...) are not part of the view, and the runtime
  hides its state directory, ``/var/log/pods``, ``/tmp`` and any paths it is told (the data dir) behind empty
  tmpfs mounts. It is always "present"; pulling it is a no-op. It has no entrypoint, so a container on it must
  say its ``command``.
* An **image store** (``ImageStore``, the protocol ``nanokube.kubelet.images.ImageStore`` satisfies): pulled
  or imported images unpacked into layer directories, listed top layer first, with the image's config
  (entrypoint, cmd, env, working dir, user). ``DirectoryImageStore`` is a small store of ready-made root
  filesystem directories (tests, and a busybox rootfs built from Debian's ``busybox-static`` by
  ``build_busybox_rootfs``).

``NodeImages`` is the CRI ImageService over both.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import ctypes
import errno
import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from nanokube.kubelet.images.registry import Credentials, credentials_from_auth

from .fake import normalize_image
from .interface import (
    AuthConfig,
    CreateContainerFailure,
    Image,
    ImagePullFailure,
    ImageSpec,
    NotFoundFailure,
    RuntimeFailure,
)

HOST_IMAGE = "nanokube.io/host:latest"
HOST_IMAGE_REPO = "nanokube.io/host"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MNT_DETACH = 2


def is_host_image(image: str) -> bool:
    """``host``, ``nanokube.io/host`` and ``nanokube.io/host:<tag>`` name the host image."""
    name = image.split("@", 1)[0]
    return name == "host" or name == HOST_IMAGE_REPO or name.startswith(HOST_IMAGE_REPO + ":")


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


HOST_IMAGE_ID = _digest(HOST_IMAGE)
HOST_IMAGE_RECORD = Image(HOST_IMAGE_ID, (HOST_IMAGE,), (f"{HOST_IMAGE_REPO}@{HOST_IMAGE_ID}",), 0)


@dataclass(frozen=True)
class ImageConfig:
    """What an image says about running it (the OCI image config's ``config`` object)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()  # "NAME=value"
    working_dir: str = ""
    user: str = ""


HOST_IMAGE_CONFIG = ImageConfig(env=(f"PATH={DEFAULT_PATH}",), working_dir="/")
PullPolicy = Literal["Always", "IfNotPresent", "Never"]


class RunConfig(Protocol):
    """The parts of an image's config a container's process is built from."""

    @property
    def entrypoint(self) -> tuple[str, ...]: ...

    @property
    def cmd(self) -> tuple[str, ...]: ...

    @property
    def env(self) -> tuple[str, ...]: ...

    @property
    def working_dir(self) -> str: ...

    @property
    def user(self) -> str: ...


class StoredImage(Protocol):
    @property
    def image_ref(self) -> str:
        """What a container status reports as its imageID (a repo digest, else the id)."""

    def cri(self) -> Image: ...


class ImageStore(Protocol):
    """What the native runtime needs of the node's image store (``nanokube.kubelet.images.ImageStore``).
    References are names (``busybox``), ``name@digest`` or image ids."""

    def get(self, ref: str) -> StoredImage | None: ...

    def list(self) -> Sequence[StoredImage]: ...

    def rootfs_layers(self, ref: str) -> builtins.list[Path]:
        """The image's unpacked layer directories, top layer first (overlayfs ``lowerdir`` order)."""

    def config(self, ref: str) -> RunConfig: ...

    async def pull(self, ref: str, policy: PullPolicy = "IfNotPresent", progress: None = None,
                   credentials: Credentials | None = None) -> StoredImage: ...

    async def remove(self, ref: str, *, force: bool = False) -> builtins.list[str]: ...


@dataclass(frozen=True)
class DirImage:
    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    rootfs: Path
    config: ImageConfig

    @property
    def image_ref(self) -> str:
        return self.repo_digests[0]

    def cri(self) -> Image:
        return Image(self.id, self.repo_tags, self.repo_digests, 0)


@dataclass
class DirectoryImageStore:
    """An ``ImageStore`` of root filesystem directories registered with ``add`` (no registry, no layers):
    tests, and nodes that run only prepared root filesystems."""

    images: dict[str, DirImage] = field(default_factory=dict)

    def add(self, name: str, rootfs: Path, config: ImageConfig | None = None) -> DirImage:
        name = normalize_image(name)
        repo = name.split("@", 1)[0] if "@" in name else name.rsplit(":", 1)[0]
        image_id = _digest(f"{name}\n{rootfs}")
        image = DirImage(image_id, (name,), (f"{repo}@{image_id}",), rootfs,
                         config or ImageConfig(env=(f"PATH={DEFAULT_PATH}",)))
        self.images[name] = image
        return image

    def get(self, ref: str) -> DirImage | None:
        found = self.images.get(normalize_image(ref))
        if found is None:
            found = next((i for i in self.images.values() if ref == i.id or ref in i.repo_digests), None)
        return found

    def _require(self, ref: str) -> DirImage:
        found = self.get(ref)
        if found is None:
            raise NotFoundFailure(f"image {ref!r} not found")
        return found

    def list(self) -> builtins.list[DirImage]:
        return builtins.list(self.images.values())

    def rootfs_layers(self, ref: str) -> builtins.list[Path]:
        return [self._require(ref).rootfs]

    def config(self, ref: str) -> ImageConfig:
        return self._require(ref).config

    async def pull(self, ref: str, policy: PullPolicy = "IfNotPresent", progress: None = None,
                   credentials: Credentials | None = None) -> DirImage:
        found = self.get(ref)
        if found is None:
            raise ImagePullFailure(f'image "{ref}" is not in the directory store')
        return found

    async def remove(self, ref: str, *, force: bool = False) -> builtins.list[str]:
        found = self._require(ref)
        self.images = {k: v for k, v in self.images.items() if v is not found}
        return [f"Deleted: {found.id}"]


@dataclass(frozen=True)
class ResolvedImage:
    name: str  # what a container status reports as its image
    ref: str  # ... and as its imageID
    layers: builtins.list[Path]  # overlay lower directories, top first
    config: RunConfig
    host: bool = False


class NodeImages:
    """The CRI ImageService of a native node: the host image, always present, and the store's images."""

    def __init__(self, store: ImageStore | None) -> None:
        self.store = store

    def resolve(self, image: str) -> ResolvedImage:
        """What a container on ``image`` runs on; CreateContainerFailure if the image is not present."""
        if is_host_image(image):
            return ResolvedImage(HOST_IMAGE, HOST_IMAGE_RECORD.repo_digests[0], [Path("/")], HOST_IMAGE_CONFIG, True)
        found = self.store.get(image) if self.store is not None else None
        if self.store is None or found is None:
            raise CreateContainerFailure(f'image "{image}" is not present on this node')
        record = found.cri()
        name = normalize_image(image)
        if name not in record.repo_tags:
            name = record.repo_tags[0] if record.repo_tags else image
        return ResolvedImage(name, found.image_ref, self.store.rootfs_layers(record.id), self.store.config(record.id))

    async def pull_image(self, image: ImageSpec, auth: AuthConfig | None = None) -> str:
        if is_host_image(image.image):
            return HOST_IMAGE_RECORD.repo_digests[0]
        if self.store is None:
            raise ImagePullFailure(f'cannot pull "{image.image}": this node has no image store (only {HOST_IMAGE})')
        credentials = None
        if auth is not None:
            credentials = credentials_from_auth(auth.username, auth.password, auth.auth, auth.registry_token)
        return (await self.store.pull(image.image, "Always", credentials=credentials)).image_ref

    async def image_status(self, image: ImageSpec) -> Image | None:
        if is_host_image(image.image):
            return HOST_IMAGE_RECORD
        found = self.store.get(image.image) if self.store is not None else None
        return found.cri() if found is not None else None

    async def list_images(self) -> builtins.list[Image]:
        stored = self.store.list() if self.store is not None else []
        return [HOST_IMAGE_RECORD, *(i.cri() for i in stored)]

    async def remove_image(self, image: ImageSpec) -> None:
        """Idempotent; the host image cannot be removed (it is the host)."""
        if not is_host_image(image.image) and self.store is not None:
            with contextlib.suppress(NotFoundFailure):
                await self.store.remove(image.image)


def build_busybox_rootfs(dest: Path, busybox: str = "/bin/busybox") -> Path:
    """A minimal root filesystem in ``dest``: the static busybox with a symlink per applet, passwd and group.
    Needs Debian's ``busybox-static`` (a dynamically linked busybox would not run without its libraries)."""
    binary = Path(busybox)
    if not binary.exists():
        raise RuntimeError(f"{busybox} not found: install the Debian package busybox-static")
    with binary.open("rb") as f:
        head = f.read(8192)
    if b"ld-linux" in head:
        raise RuntimeError(f"{busybox} is dynamically linked: install the Debian package busybox-static")
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var/www"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, dest / "bin/busybox")
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout
    for applet in applets.split():
        link = dest / applet
        if not link.exists() and not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    (dest / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (dest / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return dest


# -- overlay mounts ---------------------------------------------------------------------------------------

async def mount_overlay(lowers: list[Path], scratch: Path) -> Path:
    """Mount ``lowers`` (top layer first) with a writable upper layer under ``scratch``; returns the mount
    point ``scratch/rootfs``. Very long layer lists are given relative to their common parent (the mount
    option string is limited to a page). The directories and the mount are made on a worker thread: on a
    busy disk they take milliseconds the event loop must not wait."""
    upper, work, target = scratch / "upper", scratch / "work", scratch / "rootfs"
    top_first = [str(p) for p in lowers]
    if await asyncio.to_thread(_mount_overlay_directly, top_first, upper, work, target):
        return target
    cwd = os.path.commonpath(top_first)  # mount(8) in that directory: paths relative to it fit the page
    options = f"lowerdir={':'.join(os.path.relpath(p, cwd) for p in top_first)},upperdir={upper},workdir={work}"
    proc = await asyncio.create_subprocess_exec(
        "mount", "-t", "overlay", "overlay", "-o", options, str(target), cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, stderr = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeFailure(f"mounting the container's root filesystem: {stderr.decode().strip()}")
    return target


def _mount_overlay_directly(top_first: builtins.list[str], upper: Path, work: Path, target: Path) -> bool:
    """Make the directories and mount the overlay with mount(2); False when its options would not fit a page
    (the caller then runs mount(8) with relative paths)."""
    for d in (upper, work, target):
        d.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={':'.join(top_first)},upperdir={upper},workdir={work}"
    if len(options) >= 3500:
        return False
    try:
        mount("overlay", target, "overlay", 0, options)
    except OSError as err:
        raise RuntimeFailure(f"mounting the container's root filesystem: {err}") from None
    return True


def mount(source: str, target: Path, fstype: str, flags: int, options: str) -> None:
    """mount(2), without forking mount(8); OSError on failure."""
    if _libc.mount(source.encode(), str(target).encode(), fstype.encode(), ctypes.c_ulong(flags),
                   options.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def mounted(path: Path) -> bool:
    """Whether something is mounted at ``path`` (per /proc/self/mountinfo)."""
    wanted = str(path).replace(" ", "\\040")
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == wanted for line in f if len(line.split()) > 4)


_libc = ctypes.CDLL(None, use_errno=True)
MAX_STACKED_MOUNTS = 64


def unmount(path: Path) -> None:
    """Unmount ``path`` if it is a mount point (lazily if it is busy), every mount stacked there. Safe to call
    again. The kernel says when nothing is mounted there (EINVAL, ENOENT), so no mount table is read: that
    would cost a read of every mount on the node per call."""
    target = str(path).encode()
    for _ in range(MAX_STACKED_MOUNTS):
        if _libc.umount2(target, 0) == 0:
            continue
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return
        if _libc.umount2(target, MNT_DETACH) != 0:
            err = ctypes.get_errno()
            if err in (errno.EINVAL, errno.ENOENT):
                return
            raise OSError(err, f"umount {path}: {os.strerror(err)}")
    raise OSError(errno.EBUSY, f"umount {path}: still mounted after {MAX_STACKED_MOUNTS} unmounts")


# -- users ------------------------------------------------------------------------------------------------

def _lookup(table: Path, name: str) -> builtins.list[str] | None:
    try:
        lines = table.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name:
            return fields
    return None


def resolve_user(rootfs: Path, user: str) -> tuple[int, int]:
    """An image's ``User`` (``uid``, ``uid:gid``, ``name`` or ``name:group``) as numbers, looked up in the
    container's own /etc/passwd and /etc/group; raises RuntimeFailure for unknown names."""
    if not user:
        return 0, 0
    name, _, group = user.partition(":")
    if name.isdigit():
        uid = int(name)
        entry = next((f for f in _passwd(rootfs) if f[2] == name), None)
        gid = int(entry[3]) if entry and entry[3].isdigit() else 0
    else:
        entry = _lookup(rootfs / "etc/passwd", name)
        if entry is None or not entry[2].isdigit():
            raise RuntimeFailure(f'unable to find user {name}: no matching entries in passwd file')
        uid, gid = int(entry[2]), int(entry[3]) if entry[3].isdigit() else 0
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            found = _lookup(rootfs / "etc/group", group)
            if found is None or not found[2].isdigit():
                raise RuntimeFailure(f"unable to find group {group}: no matching entries in group file")
            gid = int(found[2])
    return uid, gid


def _passwd(rootfs: Path) -> list[list[str]]:
    try:
        return [line.split(":") for line in (rootfs / "etc/passwd").read_text(errors="replace").splitlines()
                if line.count(":") >= 3]
    except OSError:
        return []
