"""The API server: an aiohttp application serving the Kubernetes REST API from an ``ObjectStorage``.

``APIServer`` owns the HTTP side: authentication (a bearer token), errors as ``metav1.Status``, version and
health endpoints, discovery, OpenAPI, and the generic resource handler. It runs as one asyncio component
(``run(stop=...)``) beside the controllers in the same process, or alone in ``nanokube server``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from nanokube import KUBERNETES_VERSION
from nanokube.api.errors import ApiError, InternalError, NotFound, Unauthorized
from nanokube.api.registry import Registry

from . import discovery, endpointreconciler
from .bootstrap import seed
from .crd import CustomResources
from .handlers import RestHandler, json_response
from .identity import ADMIN, USER
from .negotiation import choose_output
from .openapi import OpenAPI
from .priority import PriorityAdmission
from .serviceaccountadmission import ServiceAccountAdmission
from .services import ServiceAllocator
from .storage import ObjectStorage
from .tokenrequest import ServiceAccountTokens
from .watchstream import WatchStream

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})


@dataclass
class APIServerSettings:
    host: str = "127.0.0.1"
    port: int = 6443
    # TLS: both set, or neither for plain HTTP (tests and in-process use only).
    cert_file: Path | None = None
    key_file: Path | None = None
    # Bearer tokens accepted; empty means no authentication (tests only).
    tokens: list[str] = field(default_factory=list)
    service_cidr: str = "10.43.0.0/16"
    node_port_range: tuple[int, int] = (30000, 32767)
    bookmark_interval: float = 60.0
    advertise_address: str = ""
    # PEM file of the RSA key ServiceAccount tokens are signed with; None: a key that lives as long as the process.
    service_account_key: Path | None = None
    # ServiceAccount admission (the kube-api-access volume on new Pods): on where the cluster can serve what the
    # volume needs (a CA for kube-root-ca.crt, the serviceaccount controller); off for bare in-process servers.
    service_account_admission: bool = False
    # Where Pods reach this server (the default/kubernetes Endpoints); the server listens there too. Empty: the
    # listening host when that is one address.
    service_endpoint: str = ""


def version_info() -> dict[str, str]:
    major, minor = KUBERNETES_VERSION
    return {
        "major": str(major), "minor": str(minor), "gitVersion": f"v{major}.{minor}.0-nanokube",
        "gitCommit": "nanokube", "gitTreeState": "clean", "buildDate": "2026-11-27T00:00:00Z",
        "goVersion": "python3.11", "compiler": "cpython", "platform": "linux/amd64",
        "emulationMajor": str(major), "emulationMinor": str(minor),
        "minCompatibilityMajor": str(major), "minCompatibilityMinor": str(minor - 1),
    }


class APIServer:
    def __init__(self, settings: APIServerSettings, storage: ObjectStorage) -> None:
        self.settings = settings
        self.storage = storage
        self.registry: Registry = storage.registry
        self.openapi = OpenAPI(self.registry)
        self.rest = RestHandler(storage, self.registry, WatchStream(storage,
                                                                    bookmark_interval=settings.bookmark_interval))
        self.rest.sub.rest = self.rest
        self.services = ServiceAllocator(storage, settings.service_cidr, settings.node_port_range)
        storage.admitters.append(self.services.admit)
        storage.admitters.append(PriorityAdmission(storage).admit)
        key = settings.service_account_key.read_bytes() if settings.service_account_key else None
        self.tokens = ServiceAccountTokens(storage, key)
        self.rest.sub.tokens = self.tokens
        if settings.service_account_admission:
            storage.admitters.append(ServiceAccountAdmission(storage).admit)
        self.crds = CustomResources(storage, self.registry, self.openapi, self.rest.sub)
        storage.after_write.append(self.crds.after_write)
        self.ready = asyncio.Event()
        self.bound_port = settings.port

    # -- HTTP plumbing -----------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._authenticate], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/version", self._version)
        for path in ("/healthz", "/livez", "/readyz"):
            app.router.add_get(path, self._health)
        app.router.add_get("/api", self._api_root)
        app.router.add_get("/apis", self._apis_root)
        app.router.add_get("/openapi/v3", self._openapi_root)
        app.router.add_get("/openapi/v3/{path:.+}", self._openapi_document)
        app.router.add_route("*", "/api/{tail:.+}", self._resource)
        app.router.add_route("*", "/apis/{tail:.+}", self._resource)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as err:
            return json_response(err.to_status(), status=err.code, headers=err.headers)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as err:
            log.exception("internal error serving %s %s", request.method, request.path)
            internal = InternalError.wrap(err)
            return json_response(internal.to_status(), status=500)

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request[USER] = ADMIN
        if self.settings.tokens and request.path not in _PUBLIC_PATHS:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            user = await self._user(token.strip()) if scheme.lower() == "bearer" else None
            if user is None:
                raise Unauthorized("Unauthorized")
            request[USER] = user
        return await handler(request)

    async def _user(self, token: str) -> dict[str, Any] | None:
        """Who the token speaks for (a userInfo): the administrator for one of the static tokens, the
        ServiceAccount for a token this server issued that is still valid; None for anything else."""
        if any(hmac.compare_digest(token, t) for t in self.settings.tokens):
            return ADMIN
        account = await self.tokens.authenticate(token) if token.count(".") == 2 else None
        if account is None:
            return None
        return {"username": account.username, "uid": account.uid,
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{account.namespace}",
                           "system:authenticated"]}

    async def _version(self, request: web.Request) -> web.StreamResponse:
        return json_response(version_info())

    async def _health(self, request: web.Request) -> web.StreamResponse:
        if not self.ready.is_set():
            return web.Response(status=500, text="[-]poststarthook/nanokube-bootstrap failed: not finished\n")
        if "verbose" in request.query:
            return web.Response(text=f"[+]ping ok\n[+]etcd ok\n{request.path.strip('/')} check passed\n")
        return web.Response(text="ok", content_type="text/plain")

    async def _api_root(self, request: web.Request) -> web.StreamResponse:
        if choose_output(request.headers.get("Accept"), allow_table=False).aggregated_discovery:
            return json_response(discovery.aggregated(self.registry, core=True),
                                 content_type=discovery.AGGREGATED_CONTENT_TYPE)
        return json_response(discovery.api_versions(self._server_address(request)))

    async def _apis_root(self, request: web.Request) -> web.StreamResponse:
        if choose_output(request.headers.get("Accept"), allow_table=False).aggregated_discovery:
            return json_response(discovery.aggregated(self.registry, core=False),
                                 content_type=discovery.AGGREGATED_CONTENT_TYPE)
        return json_response(discovery.api_group_list(self.registry))

    def _server_address(self, request: web.Request) -> str:
        return self.settings.advertise_address or f"{self.settings.host}:{self.bound_port}"

    async def _openapi_root(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.openapi.root())

    async def _openapi_document(self, request: web.Request) -> web.StreamResponse:
        doc = self.openapi.document(request.match_info["path"])
        if doc is None:
            raise NotFound.path()
        return web.Response(body=doc, headers={"Content-Type": "application/json",
                                               "Cache-Control": "public, immutable",
                                               "Etag": f'"{self.openapi.hash(request.match_info["path"])}"'})

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        # Discovery documents for a group or group-version.
        if request.method == "GET":
            if parts[0] == "api" and len(parts) == 2:
                body = discovery.api_resource_list(self.registry, "", parts[1])
                if body is None:
                    raise NotFound.path()
                return json_response(body)
            if parts[0] == "apis" and len(parts) == 2:
                group_doc = discovery.api_group(self.registry, parts[1])
                if group_doc is None:
                    raise NotFound.path()
                return json_response(group_doc)
            if parts[0] == "apis" and len(parts) == 3:
                body = discovery.api_resource_list(self.registry, parts[1], parts[2])
                if body is None:
                    raise NotFound.path()
                return json_response(body)
        return await self.rest.handle(request)

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        raise NotFound.path()

    # -- lifecycle ---------------------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.settings.cert_file or not self.settings.key_file:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.settings.cert_file, self.settings.key_file)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    async def prepare(self) -> None:
        """Load custom resources, seed the built-in objects. Safe on every start."""
        await self.crds.load()
        await seed(self.storage, self.services)

    async def _serve_pods(self, runner: web.AppRunner) -> None:
        """Listen where Pods reach this server too (when that is not the listening host) and point the
        ``default/kubernetes`` Endpoints and EndpointSlice there."""
        address = endpointreconciler.endpoint_address(self.settings.host, self.settings.service_endpoint)
        if not address:
            return
        if address != self.settings.host and self.settings.host not in ("0.0.0.0", "::", ""):
            sock = endpointreconciler.listen_socket(address, self.bound_port)
            await web.SockSite(runner, sock, ssl_context=self.ssl_context()).start()
        await endpointreconciler.reconcile(self.storage, address, self.bound_port)

    async def run(self, *, stop: asyncio.Event, started: Callable[[int], None] | None = None) -> None:
        """Serve until ``stop`` is set. ``started`` gets the bound port once the socket listens."""
        await self.prepare()
        runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False,
                               shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port, ssl_context=self.ssl_context(),
                           reuse_address=True, backlog=1024)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.bound_port = server.sockets[0].getsockname()[1]
        await self._serve_pods(runner)
        self.ready.set()
        if started is not None:
            started(self.bound_port)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
