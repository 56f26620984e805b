"""An async client for the pull half of the OCI distribution (registry v2) API.

It does what a pull needs and nothing else: fetch a manifest or index by tag or digest (every manifest media
type the runtime understands is in ``Accept``), stream blobs into the content store with digest verification
and progress reports, and authenticate the way registries ask to. Authentication is challenge driven, as in
Docker: a request goes out with whatever the client already holds for that registry; on ``401`` the
``WWW-Authenticate`` header says what to do next (``Bearer realm=...,service=...,scope=...``: get a token from
the realm, with Basic credentials if the node has any; ``Basic``: send the credentials) and the request is
retried once. Tokens are cached per realm, service and scope until they expire.

Registries on loopback (and those named in ``plain_http``) are spoken to over plain HTTP, like Docker's
default insecure registries; all others over HTTPS with the system's CAs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from nanokube.kubelet.runtime.interface import ImagePullFailure

from .content import CHUNK, ContentStore, DigestMismatch
from .manifest import ACCEPT, Descriptor
from .refs import Reference

MAX_MANIFEST_BYTES = 4 << 20
TOKEN_LEEWAY = 10.0
DEFAULT_TOKEN_LIFETIME = 60.0


class RegistryError(ImagePullFailure):
    """The registry refused or failed a request; ``status`` is the HTTP status (0: no response)."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class NotFound(RegistryError):
    """The repository, tag, manifest or blob does not exist."""


class Unauthorized(RegistryError):
    """Authentication failed or was required and no credentials worked."""


@dataclass(frozen=True)
class Credentials:
    """What the node knows for one registry (from an imagePullSecret or node config)."""

    username: str = ""
    password: str = ""
    registry_token: str = ""  # a bearer token to send as is


CredentialsFor = Callable[[str], Credentials | None]


def credentials_from_auth(username: str = "", password: str = "", auth: str = "",
                          registry_token: str = "") -> Credentials:
    """Credentials from the CRI's AuthConfig fields (``auth`` is base64 ``user:password``, as in
    ``.dockerconfigjson``). An OAuth identity token is not supported."""
    if auth and not (username or password):
        try:
            username, _, password = base64.b64decode(auth).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            username = password = ""
    return Credentials(username, password, registry_token)


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header; ``scheme`` is lowercase, parameter names too."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PullProgress:
    """A progress report: ``phase`` is resolving, downloading, unpacking or done; sizes in bytes."""

    ref: str
    phase: str
    digest: str = ""
    done: int = 0
    total: int = 0


ProgressCallback = Callable[[PullProgress], None]


@dataclass(frozen=True)
class FetchedManifest:
    media_type: str
    data: bytes
    digest: str


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Split a ``WWW-Authenticate`` value into challenges (RFC 7235: quoted strings may hold commas)."""
    challenges: list[Challenge] = []
    i, n = 0, len(header)
    scheme, params = "", {}
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        start = i
        while i < n and header[i] not in " \t,=":
            i += 1
        token = header[start:i]
        j = i
        while j < n and header[j] in " \t":
            j += 1
        if j < n and header[j] == "=" and scheme:
            value, i = _read_value(header, j + 1)
            params[token.lower()] = value
        elif token:
            if scheme:
                challenges.append(Challenge(scheme, params))
            scheme, params = token.lower(), {}
    if scheme:
        challenges.append(Challenge(scheme, params))
    return challenges


def _read_value(header: str, i: int) -> tuple[str, int]:
    n = len(header)
    while i < n and header[i] in " \t":
        i += 1
    if i < n and header[i] == '"':
        out: list[str] = []
        i += 1
        while i < n and header[i] != '"':
            if header[i] == "\\" and i + 1 < n:
                i += 1
            out.append(header[i])
            i += 1
        return "".join(out), i + 1
    start = i
    while i < n and header[i] not in ",":
        i += 1
    return header[start:i].strip(), i


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RegistryClient:
    """Pulls manifests and blobs from any number of registries over one aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, *, plain_http: Iterable[str] = (),
                 credentials: CredentialsFor | None = None) -> None:
        self._session = session
        self._plain_http = set(plain_http)
        self._credentials = credentials or (lambda host: None)
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}

    def base_url(self, host: str) -> str:
        scheme = "http" if host in self._plain_http or is_loopback(host) else "https"
        return f"{scheme}://{host}"

    async def ping(self, host: str) -> list[Challenge]:
        """``GET /v2/``: the challenges the registry answers with ([] when it needs no auth)."""
        try:
            async with self._session.get(self.base_url(host) + "/v2/") as resp:
                await resp.read()
                if resp.status == 401:
                    return parse_www_authenticate(resp.headers.get("WWW-Authenticate", ""))
                if resp.status >= 400:
                    raise RegistryError(f"registry {host} answered {resp.status} to /v2/", resp.status)
                return []
        except aiohttp.ClientError as e:
            raise RegistryError(f"failed to do request: GET {self.base_url(host)}/v2/: {e}") from e

    async def get_manifest(self, ref: Reference, obj: str | None = None) -> FetchedManifest:
        """The manifest or index ``obj`` (a tag or digest; default: the reference's) of ``ref``'s repository."""
        obj = obj or ref.object
        url = f"{self.base_url(ref.registry_host)}/v2/{ref.path}/manifests/{obj}"
        async with self._open(ref, url, {"Accept": ACCEPT}) as resp:
            if resp.content_length is not None and resp.content_length > MAX_MANIFEST_BYTES:
                raise RegistryError(f"manifest of {ref} is too large ({resp.content_length} bytes)")
            data = await resp.content.read(MAX_MANIFEST_BYTES + 1)
            if len(data) > MAX_MANIFEST_BYTES:
                raise RegistryError(f"manifest of {ref} is too large")
            media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if obj.startswith("sha256:") and digest != obj:
            raise DigestMismatch(f"manifest digest mismatch for {ref.name}@{obj}: got {digest}")
        return FetchedManifest(media_type, data, digest)

    async def fetch_blob(self, ref: Reference, desc: Descriptor, content: ContentStore,
                         progress: ProgressCallback | None = None) -> None:
        """Stream blob ``desc`` into ``content`` (skipped when already there); the store checks the digest."""
        if content.has(desc.digest, desc.size):
            _report(progress, PullProgress(str(ref), "downloading", desc.digest, desc.size, desc.size))
            return
        url = f"{self.base_url(ref.registry_host)}/v2/{ref.path}/blobs/{desc.digest}"
        writer = content.writer(desc.digest, desc.size)
        try:
            async with self._open(ref, url, {}) as resp:
                buf: list[bytes] = []
                pending = 0
                async for chunk in resp.content.iter_chunked(CHUNK):
                    buf.append(chunk)
                    pending += len(chunk)
                    if pending >= CHUNK:
                        await asyncio.to_thread(writer.write, b"".join(buf))
                        buf, pending = [], 0
                        _report(progress, PullProgress(str(ref), "downloading", desc.digest, writer.size, desc.size))
                await asyncio.to_thread(writer.write, b"".join(buf))
            await asyncio.to_thread(writer.commit)
        except BaseException:
            writer.abort()
            raise
        _report(progress, PullProgress(str(ref), "downloading", desc.digest, desc.size, desc.size))

    @contextlib.asynccontextmanager
    async def _open(self, ref: Reference, url: str, headers: dict[str, str]) -> AsyncIterator[
            aiohttp.ClientResponse]:
        """GET ``url``, answering one authentication challenge; raises for any non-2xx final answer."""
        host = ref.registry_host
        scope = f"repository:{ref.path}:pull"
        resp: aiohttp.ClientResponse | None = None
        try:
            for attempt in range(2):
                auth = await self._authorization(host, scope)
                resp = await self._session.get(url, headers={**headers, **auth})
                if resp.status != 401 or attempt == 1:
                    break
                challenges = parse_www_authenticate(resp.headers.get("WWW-Authenticate", ""))
                body = await resp.read()
                resp.release()
                if not self._remember(host, challenges, scope, sent=auth.get("Authorization", "")):
                    raise Unauthorized(_error_message(ref, 401, body), 401, _error_code(body))
            assert resp is not None
            if resp.status >= 400:
                body = await resp.read()
                cls = NotFound if resp.status == 404 else Unauthorized if resp.status in (401, 403) \
                    else RegistryError
                raise cls(_error_message(ref, resp.status, body), resp.status, _error_code(body))
            yield resp
        except aiohttp.ClientError as e:
            raise RegistryError(f"failed to do request: GET {url}: {e}") from e
        finally:
            if resp is not None:
                resp.release()

    def _remember(self, host: str, challenges: list[Challenge], scope: str, sent: str) -> bool:
        """Keep the challenge this client can answer; False when there is none or the answer was refused."""
        for c in challenges:
            if c.scheme == "bearer" and c.params.get("realm"):
                self._challenges[host] = c
                self._tokens.pop((c.params["realm"], c.params.get("service", ""), scope), None)
                return not sent.startswith("Bearer ") or sent != self._static_bearer(host)
            if c.scheme == "basic":
                basic = self._basic(host)
                if not basic or sent == basic:
                    return False
                self._challenges[host] = c
                return True
        return False

    def _static_bearer(self, host: str) -> str:
        creds = self._credentials(host)
        return f"Bearer {creds.registry_token}" if creds is not None and creds.registry_token else ""

    async def _authorization(self, host: str, scope: str) -> dict[str, str]:
        creds = self._credentials(host)
        challenge = self._challenges.get(host)
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            return {"Authorization": self._basic(host)}
        if creds is not None and creds.registry_token:
            return {"Authorization": self._static_bearer(host)}
        token = await self._token(host, challenge, scope)
        return {"Authorization": f"Bearer {token}"}

    def _basic(self, host: str) -> str:
        creds = self._credentials(host)
        if creds is None or not (creds.username or creds.password):
            return ""
        raw = f"{creds.username}:{creds.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    async def _token(self, host: str, challenge: Challenge, scope: str) -> str:
        realm = challenge.params.get("realm", "")
        if not realm:
            raise Unauthorized(f"registry {host} sent a Bearer challenge without a realm", 401)
        service = challenge.params.get("service", "")
        key = (realm, service, scope)
        cached = self._tokens.get(key)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        params = {k: v for k, v in (("service", service), ("scope", scope)) if v}
        basic = self._basic(host)
        headers = {"Authorization": basic} if basic else {}
        try:
            async with self._session.get(realm, params=params, headers=headers) as resp:
                body = await resp.read()
                if resp.status != 200:
                    what = "token" if basic else "anonymous token"
                    raise Unauthorized(f"failed to authorize: failed to fetch {what}: unexpected status from "
                                       f"GET request to {resp.url}: {resp.status} {resp.reason}", resp.status)
                doc = _json(body)
        except aiohttp.ClientError as e:
            raise Unauthorized(f"failed to authorize: failed to fetch token from {realm}: {e}") from e
        token = str(doc.get("token") or doc.get("access_token") or "")
        if not token:
            raise Unauthorized(f"failed to authorize: token server {realm} returned no token")
        lifetime = float(doc.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        self._tokens[key] = (token, now + max(lifetime - TOKEN_LEEWAY, 1.0))
        return token


def _report(progress: ProgressCallback | None, event: PullProgress) -> None:
    if progress is not None:
        progress(event)


def _json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _error_code(body: bytes) -> str:
    errors = _json(body).get("errors") or [{}]
    return str(errors[0].get("code", "")) if isinstance(errors[0], dict) else ""


def _error_message(ref: Reference, status: int, body: bytes) -> str:
    errors = _json(body).get("errors") or []
    detail = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors if isinstance(e, dict))
    if status == 404:
        return f"{ref}: not found"
    if status in (401, 403):
        return ("pull access denied, repository does not exist or may require authorization: "
                f"server message: {detail or status}")
    return f"unexpected status from registry for {ref}: {status}" + (f": {detail}" if detail else "")
