"""Registry authentication and integrity against a small fake registry (aiohttp) on loopback: the
``WWW-Authenticate`` parser, Docker Hub style Bearer tokens (anonymous and with credentials, cached), Basic
auth, static tokens, redirects to blob storage, and registries that serve the wrong bytes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from images_helpers import Built, Entry, build_image, digest_of, require_root, tar_entries

from nanokube.kubelet.images.content import DigestMismatch
from nanokube.kubelet.images.registry import (
    Challenge,
    Credentials,
    RegistryClient,
    Unauthorized,
    credentials_from_auth,
    is_loopback,
    parse_www_authenticate,
)
from nanokube.kubelet.images.store import ImagePullError, ImageStore


@pytest.mark.parametrize(("header", "expected"), [
    ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
     'scope="repository:library/nginx:pull"',
     [Challenge("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                           "scope": "repository:library/nginx:pull"})]),
    ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
    ('Basic realm="a, b", Bearer realm="http://x/t", scope="repository:a:pull,push"',
     [Challenge("basic", {"realm": "a, b"}), Challenge("bearer", {"realm": "http://x/t",
                                                                  "scope": "repository:a:pull,push"})]),
    ('BEARER Realm=http://x/t , Service = svc', [Challenge("bearer", {"realm": "http://x/t", "service": "svc"})]),
    (r'Bearer realm="a\"b"', [Challenge("bearer", {"realm": 'a"b'})]),
    ("Negotiate", [Challenge("negotiate", {})]),
    ("", []),
])
def test_www_authenticate_parsing(header: str, expected: list[Challenge]) -> None:
    assert parse_www_authenticate(header) == expected


def test_credentials_from_cri_auth_config() -> None:
    assert credentials_from_auth(auth=base64.b64encode(b"u:p:q").decode()) == Credentials("u", "p:q")
    assert credentials_from_auth("a", "b", auth="ignored") == Credentials("a", "b")
    assert credentials_from_auth(registry_token="t") == Credentials(registry_token="t")
    assert credentials_from_auth(auth="%%%") == Credentials()


def test_loopback_registries_use_plain_http() -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost:5000") and is_loopback("[::1]:5000")
    assert not is_loopback("registry-1.docker.io") and not is_loopback("10.0.0.1:5000")
    client = RegistryClient(None, plain_http=["reg.lan:5000"])  # type: ignore[arg-type]
    assert client.base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert client.base_url("reg.lan:5000") == "http://reg.lan:5000"
    assert client.base_url("ghcr.io") == "https://ghcr.io"


@dataclass
class FakeRegistry:
    """Serves one repository; ``auth`` is none, bearer or basic; records what the token endpoint was asked."""

    image: Built
    auth: str = "bearer"
    user: str = ""
    password: str = ""
    token_field: str = "token"
    corrupt: set[str] = field(default_factory=set)
    token_requests: list[tuple[dict[str, str], str]] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v2/", self.ping)
        app.router.add_get("/v2/{name:.+}/manifests/{ref}", self.manifest)
        app.router.add_get("/v2/{name:.+}/blobs/{digest}", self.blob)
        app.router.add_get("/storage/{digest}", self.storage)
        app.router.add_get("/token", self.token)
        return app

    def _denied(self, scope: str) -> web.Response | None:
        header = self.request_auth
        if self.auth == "none":
            return None
        if self.auth == "basic":
            if header == _basic(self.user, self.password):
                return None
            challenge = 'Basic realm="fake"'
        else:
            if header.startswith("Bearer ") and header[7:] in self.issued:
                return None
            challenge = f'Bearer realm="{self.url}/token",service="fake.registry",scope="{scope}"'
        return web.json_response({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                                 status=401, headers={"WWW-Authenticate": challenge})

    async def ping(self, request: web.Request) -> web.StreamResponse:
        self.request_auth = request.headers.get("Authorization", "")
        return self._denied("") or web.json_response({})

    async def manifest(self, request: web.Request) -> web.StreamResponse:
        self.request_auth = request.headers.get("Authorization", "")
        name, ref = request.match_info["name"], request.match_info["ref"]
        denied = self._denied(f"repository:{name}:pull")
        if denied:
            return denied
        if name != "team/app" or ref not in ("v1", self.image.digest):
            return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]},
                                     status=404)
        body = self.image.manifest + (b" " if ref in self.corrupt else b"")
        return web.Response(body=body, content_type=self.image.manifest_type)

    async def blob(self, request: web.Request) -> web.StreamResponse:
        self.request_auth = request.headers.get("Authorization", "")
        denied = self._denied(f"repository:{request.match_info['name']}:pull")
        if denied:
            return denied
        raise web.HTTPTemporaryRedirect(f"/storage/{request.match_info['digest']}")

    async def storage(self, request: web.Request) -> web.StreamResponse:
        digest = request.match_info["digest"]
        data = self.image.blobs.get(digest)
        if data is None:
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN"}]}, status=404)
        if digest in self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        return web.Response(body=data, content_type="application/octet-stream")

    async def token(self, request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        self.token_requests.append((dict(request.query), header))
        if self.user and header != _basic(self.user, self.password):
            return web.json_response({"details": "incorrect username or password"}, status=401)
        token = f"tok-{len(self.issued)}"
        self.issued.add(token)
        return web.json_response({self.token_field: token, "expires_in": 300})

    request_auth: str = ""


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def image() -> Built:
    return build_image([tar_entries([Entry("hello.txt", "file", "hello\n")]),
                        tar_entries([Entry("etc", "dir"), Entry("etc/motd", "file", "hi\n")])])


@pytest.fixture
async def serve() -> AsyncIterator[object]:
    runners: list[web.AppRunner] = []

    async def start(fake: FakeRegistry) -> str:
        runner = web.AppRunner(fake.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        fake.url = f"http://127.0.0.1:{port}"
        return f"127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture(autouse=True)
def _root() -> None:
    require_root()


async def test_anonymous_bearer_token_is_fetched_once(tmp_path: Path, image: Built, serve: object) -> None:
    fake = FakeRegistry(image, token_field="access_token")
    host = await serve(fake)  # type: ignore[operator]
    store = ImageStore(tmp_path / "images")
    pulled = await store.pull(f"{host}/team/app:v1")
    assert pulled.id == image.config_digest
    assert fake.token_requests == [({"service": "fake.registry", "scope": "repository:team/app:pull"}, "")]


async def test_bearer_token_with_credentials(tmp_path: Path, image: Built, serve: object) -> None:
    fake = FakeRegistry(image, user="alice", password="s3cret")
    host = await serve(fake)  # type: ignore[operator]
    store = ImageStore(tmp_path / "images")
    with pytest.raises(ImagePullError, match="failed to fetch anonymous token") as info:
        await store.pull(f"{host}/team/app:v1")
    assert isinstance(info.value.__cause__, Unauthorized)
    with pytest.raises(ImagePullError, match="failed to fetch token"):
        await store.pull(f"{host}/team/app:v1", credentials=Credentials("alice", "wrong"))
    pulled = await store.pull(f"{host}/team/app:v1", credentials=Credentials("alice", "s3cret"))
    assert pulled.id == image.config_digest
    assert fake.token_requests[-1][1] == _basic("alice", "s3cret")
    assert store.list() == [pulled]


async def test_store_level_credentials_are_used_per_registry(tmp_path: Path, image: Built, serve: object) -> None:
    fake = FakeRegistry(image, user="bob", password="pw")
    host = await serve(fake)  # type: ignore[operator]
    creds = {host: Credentials("bob", "pw")}
    store = ImageStore(tmp_path / "images", credentials=creds.get)
    assert (await store.pull(f"{host}/team/app:v1")).id == image.config_digest


async def test_basic_auth(tmp_path: Path, image: Built, serve: object) -> None:
    fake = FakeRegistry(image, auth="basic", user="carol", password="pw")
    host = await serve(fake)  # type: ignore[operator]
    store = ImageStore(tmp_path / "images")
    with pytest.raises(ImagePullError, match="pull access denied") as info:
        await store.pull(f"{host}/team/app:v1")
    assert isinstance(info.value.__cause__, Unauthorized)
    with pytest.raises(ImagePullError, match="pull access denied"):
        await store.pull(f"{host}/team/app:v1", credentials=Credentials("carol", "nope"))
    pulled = await store.pull(f"{host}/team/app:v1", credentials=Credentials("carol", "pw"))
    assert pulled.id == image.config_digest
    assert fake.token_requests == []


async def test_static_registry_token(tmp_path: Path, image: Built, serve: object) -> None:
    fake = FakeRegistry(image)
    fake.issued.add("given")
    host = await serve(fake)  # type: ignore[operator]
    store = ImageStore(tmp_path / "images")
    assert (await store.pull(f"{host}/team/app:v1", credentials=Credentials(registry_token="given"))).id
    assert fake.token_requests == []
    with pytest.raises(ImagePullError, match="pull access denied"):
        await store.pull(f"{host}/team/app:v1", policy="Always", credentials=Credentials(registry_token="bad"))


async def test_lying_registry_blob_is_refused(tmp_path: Path, image: Built, serve: object) -> None:
    layer = digest_of(image.layers[1])
    fake = FakeRegistry(image, auth="none", corrupt={layer})
    host = await serve(fake)  # type: ignore[operator]
    store = ImageStore(tmp_path / "images")
    with pytest.raises(ImagePullError, match="digest mismatch") as info:
        await store.pull(f"{host}/team/app:v1")
    assert isinstance(info.value.__cause__, DigestMismatch)
    assert store.list() == []
    assert not store.content.has(layer)
    assert list(store.content.ingest_dir.iterdir()) == []
    fake.corrupt.clear()
    assert (await store.pull(f"{host}/team/app:v1")).id == image.config_digest


async def test_manifest_by_digest_is_verified(tmp_path: Path, image: Built, serve: object) -> None:
    fake = FakeRegistry(image, auth="none", corrupt={image.digest})
    host = await serve(fake)  # type: ignore[operator]
    store = ImageStore(tmp_path / "images")
    with pytest.raises(ImagePullError, match="manifest digest mismatch"):
        await store.pull(f"{host}/team/app@{image.digest}")


async def test_client_ping_reports_challenges(image: Built, serve: object) -> None:
    fake = FakeRegistry(image)
    host = await serve(fake)  # type: ignore[operator]
    async with aiohttp.ClientSession() as session:
        challenges = await RegistryClient(session).ping(host)
    assert challenges[0].scheme == "bearer"
    assert challenges[0].params["realm"] == f"{fake.url}/token"
