"""Image references, parsed and normalised the way Docker and containerd do it.

``nginx`` means ``docker.io/library/nginx:latest``, ``127.0.0.1:5000/busybox:1.36`` names a registry with a
port, ``name@sha256:...`` pins a digest. Everything the store keeps and reports (repoTags, repoDigests, the
``image`` of a container status) uses the full normalised form, so one spelling never becomes two images; the
``familiar`` form (``nginx:latest``) is only for tables. The grammar follows distribution's ``reference``
package (domain, lowercase path components, tag, digest); this module does no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nanokube.kubelet.runtime.interface import RuntimeFailure

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"
DEFAULT_TAG = "latest"
OFFICIAL_PREFIX = "library/"
MAX_NAME_LENGTH = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.%]+\])(?::[0-9]+)?")
_PATH_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_SHA256_RE = re.compile(r"sha256:[0-9a-f]{64}")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")


class InvalidReference(RuntimeFailure):
    """The image name cannot be parsed (the kubelet's ``InvalidImageName``)."""

    reason = "InvalidImageName"


@dataclass(frozen=True)
class Reference:
    """A normalised image reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """The repository's full name, ``docker.io/library/nginx``."""
        return f"{self.domain}/{self.path}"

    @property
    def registry_host(self) -> str:
        """Where the registry API lives (Docker Hub's API is not at ``docker.io``)."""
        return DOCKER_HUB_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def object(self) -> str:
        """What to ask the registry's manifest endpoint for: the digest if pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, "")

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, "", digest)

    def tagged(self) -> str:
        """``name:tag`` ("" when the reference only has a digest)."""
        return f"{self.name}:{self.tag}" if self.tag else ""

    def familiar(self) -> str:
        """The short form Docker prints: ``nginx:latest``, ``me/app@sha256:...``, ``host:5000/x:1``."""
        return _familiar_name(self.domain, self.path) + self._suffix()

    def familiar_name(self) -> str:
        return _familiar_name(self.domain, self.path)

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def _familiar_name(domain: str, path: str) -> str:
    if domain != DEFAULT_DOMAIN:
        return f"{domain}/{path}"
    return path.removeprefix(OFFICIAL_PREFIX) if path.count("/") == 1 else path


def parse(text: str) -> Reference:
    """Parse and normalise ``text``; a reference with neither tag nor digest gets the tag ``latest``.

    Raises ``InvalidReference`` with Docker's wording for names it rejects (uppercase repositories,
    bare 64-hex ids, bad tags or digests).
    """
    ref = parse_loose(text)
    if not ref.tag and not ref.digest:
        ref = Reference(ref.domain, ref.path, DEFAULT_TAG, "")
    return ref


def parse_loose(text: str) -> Reference:
    """Like ``parse`` but leaves the tag empty when none is given (for matching ``busybox`` against any tag)."""
    if not text or text != text.strip():
        raise InvalidReference(f"invalid reference format: {text!r}")
    if _HEX64_RE.fullmatch(text):
        raise InvalidReference(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    rest, _, digest = text.partition("@")
    if digest and not _DIGEST_RE.fullmatch(digest):
        raise InvalidReference(f"invalid reference format: {text!r}: bad digest")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag = ""
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReference(f"invalid reference format: {text!r}: bad tag")
    domain, path = _split_domain(rest, text)
    if len(domain) + 1 + len(path) > MAX_NAME_LENGTH:
        raise InvalidReference(f"invalid reference format: {text!r}: repository name must not be more than "
                               f"{MAX_NAME_LENGTH} characters")
    return Reference(domain, path, tag, digest.lower() if digest.startswith("sha256:") else digest)


def _split_domain(name: str, text: str) -> tuple[str, str]:
    first, sep, remainder = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost" and first == first.lower()):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain = first
        if not _DOMAIN_RE.fullmatch(domain):
            raise InvalidReference(f"invalid reference format: {text!r}: bad registry domain")
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    for component in remainder.split("/"):
        if not _PATH_COMPONENT_RE.fullmatch(component):
            if component.lower() != component and _PATH_COMPONENT_RE.fullmatch(component.lower()):
                raise InvalidReference(f"invalid reference format: repository name ({remainder}) must be lowercase")
            raise InvalidReference(f"invalid reference format: {text!r}")
    return domain, remainder


def is_image_id(text: str) -> bool:
    """``sha256:<64 hex>``: an image id (the config digest), not a name."""
    return bool(_SHA256_RE.fullmatch(text))


def is_sha256_digest(text: str) -> bool:
    return bool(_SHA256_RE.fullmatch(text))


def short_id(image_id: str, length: int = 13) -> str:
    """The id as tables print it: the first 13 hex digits, no algorithm (``crictl images``)."""
    return image_id.partition(":")[2][:length] if ":" in image_id else image_id[:length]
