"""Offline image building for the image tests: a busybox rootfs from Debian's busybox-static, layer tarballs
(with whiteouts), OCI layouts/archives, docker-archives, a local Debian ``docker-registry`` and a minimal push.

Everything here is written for the tests (no skopeo/umoci): blobs are plain bytes in memory, so a test can also
corrupt them on purpose.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

BUSYBOX = Path("/bin/busybox")
REGISTRY = Path("/usr/bin/docker-registry")

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def require(path: Path, package: str) -> None:
    if not path.exists():
        raise AssertionError(f"{path} is missing: install the Debian package {package!r} "
                             f"(apt-get install -y {package})")


def require_root() -> None:
    if os.geteuid() != 0:
        raise AssertionError("this test unpacks image layers (mknod, trusted xattrs, overlay mounts): run it as root")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- layers -----------------------------------------------------------------------------------------------

@dataclass
class Entry:
    """One tar member: kind is file, dir, symlink, hardlink or char; ``data`` is content or link target."""

    name: str
    kind: str = "file"
    data: bytes | str = b""
    mode: int = 0o644


def tar_entries(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.mode, info.mtime = e.mode, 1_700_000_000
            if e.kind == "file":
                data = e.data if isinstance(e.data, bytes) else e.data.encode()
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            if e.kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, e.mode if e.mode != 0o644 else 0o755
            elif e.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(e.data)
            elif e.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, str(e.data)
            tf.addfile(info)
    return buf.getvalue()


def busybox_entries() -> list[Entry]:
    """A busybox rootfs: /bin/busybox, an applet symlink for each applet, /etc/passwd, a web root."""
    require(BUSYBOX, "busybox-static")
    entries = [Entry(d, "dir") for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev",
                                         "tmp", "root", "var", "var/www")]
    entries.append(Entry("bin/busybox", "file", BUSYBOX.read_bytes(), 0o755))
    applets = subprocess.run([str(BUSYBOX), "--list-full"], capture_output=True, text=True, check=True).stdout
    for path in applets.split():
        if path != "bin/busybox":
            entries.append(Entry(path, "symlink", "/bin/busybox"))
    entries += [Entry("etc/passwd", "file", "root:x:0:0:root:/root:/bin/sh\n"),
                Entry("etc/group", "file", "root:x:0:\n"),
                Entry("etc/motd", "file", "welcome\n"),
                Entry("var/www/index.html", "file", "old index\n"),
                Entry("var/www/old.html", "file", "old page\n")]
    return entries


def whiteout_entries() -> list[Entry]:
    """A second layer: deletes /etc/motd (whiteout), replaces /var/www (opaque) with a new index.html."""
    return [
        Entry("etc", "dir"), Entry("etc/.wh.motd"), Entry("etc/added", "file", "added\n"),
        Entry("etc/added-link", "hardlink", "etc/added"), Entry("var", "dir"), Entry("var/www", "dir"),
        Entry("var/www/.wh..wh..opq"), Entry("var/www/index.html", "file", "new index\n")]


# -- images -----------------------------------------------------------------------------------------------

@dataclass
class Built:
    """An image as a registry or layout holds it: manifest, config and layer blobs by digest."""

    manifest: bytes
    manifest_type: str
    config: bytes
    layers: list[bytes]
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)

    @property
    def config_digest(self) -> str:
        return digest_of(self.config)


BUSYBOX_CONFIG = {"Env": ["PATH=/bin:/sbin:/usr/bin:/usr/sbin"], "Cmd": ["/bin/sh"], "WorkingDir": "/",
                  "Entrypoint": None, "User": ""}


def build_image(layer_tars: list[bytes], *, docker: bool = False, compress: bool = True,
                arch: str = "amd64", config: dict[str, Any] | None = None) -> Built:
    """Compress the layers, write a config with their diff ids and a manifest (OCI, or Docker schema2)."""
    blobs_ = [gzip.compress(t, mtime=0) if compress else t for t in layer_tars]
    cfg = {"architecture": arch, "os": "linux", "config": config or BUSYBOX_CONFIG,
           "rootfs": {"type": "layers", "diff_ids": [digest_of(t) for t in layer_tars]},
           "created": "2024-01-01T00:00:00Z"}
    config_bytes = json.dumps(cfg).encode()
    layer_type = (DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP) if compress else OCI_LAYER
    manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
                "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "size": len(config_bytes),
                           "digest": digest_of(config_bytes)},
                "layers": [{"mediaType": layer_type, "size": len(b), "digest": digest_of(b)} for b in blobs_]}
    manifest_bytes = json.dumps(manifest).encode()
    built = Built(manifest_bytes, manifest["mediaType"], config_bytes, blobs_)  # type: ignore[arg-type]
    built.blobs = {digest_of(b): b for b in [config_bytes, *blobs_]}
    return built


def index_of(images: list[tuple[Built, str]], *, docker: bool = False) -> bytes:
    """An OCI index (or Docker manifest list) of (image, architecture) pairs."""
    doc = {"schemaVersion": 2, "mediaType": DOCKER_LIST if docker else OCI_INDEX,
           "manifests": [{"mediaType": b.manifest_type, "size": len(b.manifest), "digest": b.digest,
                          "platform": {"os": "linux", "architecture": arch}} for b, arch in images]}
    return json.dumps(doc).encode()


def write_oci_layout(root: Path, entries: list[tuple[Built, str]], extra_index: bytes | None = None) -> None:
    """An OCI image layout: ``entries`` are (image, ref.name annotation); ``extra_index`` adds a nested index."""
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    manifests = []
    for built, name in entries:
        for data in [built.manifest, *built.blobs.values()]:
            (root / "blobs" / "sha256" / digest_of(data)[7:]).write_bytes(data)
        manifests.append({"mediaType": built.manifest_type, "size": len(built.manifest), "digest": built.digest,
                          "annotations": {"org.opencontainers.image.ref.name": name}})
    if extra_index is not None:
        (root / "blobs" / "sha256" / digest_of(extra_index)[7:]).write_bytes(extra_index)
        manifests.append({"mediaType": OCI_INDEX, "size": len(extra_index), "digest": digest_of(extra_index),
                          "annotations": {"org.opencontainers.image.ref.name": "multi"}})
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))


def tar_directory(src: Path, dest: Path) -> None:
    with tarfile.open(dest, "w") as tf:
        for item in sorted(src.iterdir()):
            tf.add(item, arcname=item.name)


def write_docker_archive(dest: Path, built: Built, repo_tags: list[str]) -> None:
    """``docker save`` format: manifest.json, <config>.json and <n>/layer.tar (uncompressed layers)."""
    with tarfile.open(dest, "w") as tf:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        config_name = built.config_digest[7:] + ".json"
        add(config_name, built.config)
        layer_names = []
        for n, layer in enumerate(built.layers):
            raw = gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer
            layer_names.append(f"layer{n}/layer.tar")
            add(layer_names[-1], raw)
        add("manifest.json", json.dumps([{"Config": config_name, "RepoTags": repo_tags,
                                          "Layers": layer_names}]).encode())


# -- a local registry ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_registry(tmp: Path) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1:<free port>, storage in ``tmp``; yields ``host:port``."""
    require(REGISTRY, "docker-registry")
    port = free_port()
    cfg = tmp / "registry.yml"
    cfg.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {tmp / 'data'}\n"
                   f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n")
    log = (tmp / "registry.log").open("wb")
    proc = subprocess.Popen([str(REGISTRY), "serve", str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"docker-registry did not start: {(tmp / 'registry.log').read_text()}")
            time.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
        shutil.rmtree(tmp / "data", ignore_errors=True)


async def push(host: str, repo: str, tag: str, built: Built | None, *, index: bytes | None = None,
               index_type: str = OCI_INDEX) -> None:
    """Push blobs (monolithic upload) and the manifest, or just an index when ``index`` is given."""
    base = f"http://{host}/v2/{repo}"
    async with aiohttp.ClientSession() as s:
        if built is not None:
            for digest, data in built.blobs.items():
                async with s.post(f"{base}/blobs/uploads/") as r:
                    assert r.status == 202, await r.text()
                    location = r.headers["Location"]
                if location.startswith("/"):
                    location = f"http://{host}{location}"
                sep = "&" if "?" in location else "?"
                async with s.put(f"{location}{sep}digest={digest}", data=data,
                                 headers={"Content-Type": "application/octet-stream"}) as r:
                    assert r.status == 201, await r.text()
            body, media_type, ref = built.manifest, built.manifest_type, tag or built.digest
        else:
            assert index is not None
            body, media_type, ref = index, index_type, tag
        async with s.put(f"{base}/manifests/{ref}", data=body, headers={"Content-Type": media_type}) as r:
            assert r.status == 201, await r.text()


@contextlib.contextmanager
def overlay_mount(lower: list[Path], target: Path) -> Iterator[Path]:
    """An overlay of ``lower`` (top first) at ``target`` with a writable upper layer beside it, as a container
    rootfs is mounted; unmounted on exit."""
    require_root()
    upper, work = target.with_name(target.name + "-upper"), target.with_name(target.name + "-work")
    for d in (target, upper, work):
        d.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={':'.join(map(str, lower))},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(target)], check=True,
                   capture_output=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False, capture_output=True)


def tree(root: Path) -> dict[str, str]:
    """path → what it is ("dir", "-> target", or the file's text) for everything under ``root``."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            elif name == "busybox":
                out[rel] = "busybox"
            else:
                out[rel] = p.read_bytes().decode(errors="replace")
    return out
