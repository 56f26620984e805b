"""The JSON documents of an image: OCI and Docker manifests, indexes, platform choice, and the image config.

Registries and archives hand out four manifest flavours (OCI index, OCI manifest, Docker manifest list, Docker
schema2 manifest); this module folds each pair into one shape (``Index`` or ``Manifest``) so the puller and the
importer share one code path, and reads the config's ``Entrypoint``/``Cmd``/``Env``/``WorkingDir``/``User``
into ``ImageConfig`` for the runtime. Pure parsing: no I/O.
"""

from __future__ import annotations

import platform as host_platform
from dataclasses import dataclass, field
from typing import Any

from nanokube.kubelet.runtime.interface import ImagePullFailure

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
LAYER_TYPES = (OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER,
               "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
               "application/vnd.oci.image.layer.nondistributable.v1.tar")
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))


class ManifestError(ImagePullFailure):
    """A manifest, index or config that cannot be used."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any], default_type: str = "") -> Descriptor:
        try:
            return cls(d.get("mediaType") or default_type, d["digest"], int(d["size"]), d.get("platform"),
                       dict(d.get("annotations") or {}))
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError(f"malformed descriptor {d!r}") from e

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            out["platform"] = self.platform
        if self.annotations:
            out["annotations"] = self.annotations
        return out


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


_ARCH = {"x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
         "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "i686": ("386", ""), "i386": ("386", ""),
         "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", "")}


def host() -> Platform:
    """This machine's platform in OCI terms (``linux/amd64`` on x86_64)."""
    arch, variant = _ARCH.get(host_platform.machine().lower(), (host_platform.machine().lower(), ""))
    return Platform("linux", arch, variant)


def parse_document(media_type: str, doc: dict[str, Any]) -> Manifest | Index:
    """Read a manifest or index; ``media_type`` is the transport's (HTTP header), the document's own wins."""
    known = (*INDEX_TYPES, *MANIFEST_TYPES, DOCKER_SCHEMA1)
    kind = doc.get("mediaType") or (media_type if media_type in known else "")
    if not kind:  # old registries answer application/json and OCI documents may omit mediaType
        kind = OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "config" in doc else ""
    if kind in INDEX_TYPES:
        return Index(kind, tuple(Descriptor.from_json(d) for d in doc.get("manifests") or ()))
    if kind in MANIFEST_TYPES:
        if "config" not in doc:
            raise ManifestError("manifest has no config")
        layer_default = DOCKER_LAYER_GZIP if kind == DOCKER_MANIFEST else OCI_LAYER_GZIP
        return Manifest(kind, Descriptor.from_json(doc["config"]),
                        tuple(Descriptor.from_json(d, layer_default) for d in doc.get("layers") or ()))
    if kind == DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise ManifestError("Docker image manifest schema 1 is not supported (deprecated by Docker in 2019)")
    raise ManifestError(f"unsupported manifest media type {kind!r}")


def select_platform(index: Index, want: Platform) -> Descriptor:
    """The manifest of ``index`` for ``want``: same os and architecture, the variant preferred when it matches.

    Attestation manifests (BuildKit's ``unknown/unknown``) and entries without a platform are skipped unless
    the index has nothing else.
    """
    candidates: list[tuple[int, int, Descriptor]] = []
    for pos, d in enumerate(index.manifests):
        if d.media_type not in MANIFEST_TYPES and d.media_type:
            continue
        p = d.platform or {}
        if not p:
            candidates.append((2, pos, d))
            continue
        if p.get("os") != want.os or p.get("architecture") != want.architecture:
            continue
        variant = p.get("variant", "")
        if want.variant and variant and variant != want.variant:
            continue
        candidates.append((0 if variant == want.variant else 1, pos, d))
    if not candidates:
        offered = ", ".join(platform_string(d.platform) for d in index.manifests) or "nothing"
        raise ManifestError(f"no match for platform in manifest: not found (want {want}, index offers {offered})")
    return min(candidates, key=lambda c: (c[0], c[1]))[2]


def platform_string(p: dict[str, Any] | None) -> str:
    if not p:
        return "unknown"
    return "/".join(x for x in (p.get("os", ""), p.get("architecture", ""), p.get("variant", "")) if x)


@dataclass(frozen=True)
class ImageConfig:
    """What the runtime merges with the container spec (the ``config`` object of an image config)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: str = ""
    os: str = ""
    architecture: str = ""
    created: str = ""

    def argv(self, command: list[str], args: list[str]) -> list[str]:
        """The process to run, by Kubernetes' rules: ``command`` replaces the Entrypoint (and drops Cmd),
        ``args`` replace Cmd; with neither the image's Entrypoint + Cmd run."""
        if command:
            return [*command, *args]
        return [*self.entrypoint, *(args or self.cmd)]

    def merged_env(self, envs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The image's Env with the container's variables layered over it (same name: the container's value, in the
        image's place)."""
        merged: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            merged[key] = value
        for key, value in envs:
            merged[key] = value
        return list(merged.items())

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ImageConfig:
        c = doc.get("config") or {}
        return cls(entrypoint=tuple(c.get("Entrypoint") or ()), cmd=tuple(c.get("Cmd") or ()),
                   env=tuple(c.get("Env") or ()), working_dir=c.get("WorkingDir") or "",
                   user=c.get("User") or "", exposed_ports=tuple(sorted(c.get("ExposedPorts") or {})),
                   volumes=tuple(sorted(c.get("Volumes") or {})),
                   labels=tuple(sorted((c.get("Labels") or {}).items())), stop_signal=c.get("StopSignal") or "",
                   os=doc.get("os") or "", architecture=doc.get("architecture") or "",
                   created=doc.get("created") or "")


def diff_ids(config_doc: dict[str, Any]) -> list[str]:
    """The uncompressed digests of the layers, bottom first (``rootfs.diff_ids``)."""
    rootfs = config_doc.get("rootfs") or {}
    ids = rootfs.get("diff_ids")
    if rootfs.get("type", "layers") != "layers" or not isinstance(ids, list):
        raise ManifestError("image config has no rootfs.diff_ids")
    return [str(i) for i in ids]
