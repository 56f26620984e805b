"""TokenRequest and ServiceAccount token authentication, over HTTP against a real APIServer app."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from nanokube.api.registry import Registry
from nanokube.apiserver.app import APIServer, APIServerSettings
from nanokube.apiserver.storage import ObjectStorage
from nanokube.apiserver.tokenrequest import ServiceAccountTokens
from nanokube.store.memory import MemoryStore
from nanokube.util.certs import ensure_service_account_key

ADMIN = {"Authorization": "Bearer admin-secret"}
SA_TOKEN = "/api/v1/namespaces/default/serviceaccounts/{}/token"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], APIServer]]:
    store = MemoryStore()
    await store.start()
    storage = ObjectStorage(store, Registry())
    key = ensure_service_account_key(tmp_path / "pki")
    server = APIServer(APIServerSettings(tokens=["admin-secret"], service_account_key=key), storage)
    await server.prepare()
    server.ready.set()
    client = TestClient(TestServer(server.build_app()))
    await client.start_server()
    await client.post("/api/v1/namespaces/default/serviceaccounts", headers=ADMIN,
                      json={"metadata": {"name": "robot"}})
    try:
        yield client, server
    finally:
        await client.close()
        await store.close()


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


async def request_token(client: TestClient[Any, Any], name: str = "robot", **spec: Any) -> Any:
    resp = await client.post(SA_TOKEN.format(name), headers=ADMIN,
                             json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
    return resp.status, await resp.json()


async def test_token_request_defaults_and_claims(api: tuple[TestClient[Any, Any], APIServer]) -> None:
    client, _ = api
    status, body = await request_token(client)
    assert status == 201
    assert body["kind"] == "TokenRequest" and body["apiVersion"] == "authentication.k8s.io/v1"
    assert body["spec"]["expirationSeconds"] == 3600
    assert body["spec"]["audiences"] == ["https://kubernetes.default.svc.cluster.local"]
    claims = claims_of(body["status"]["token"])
    assert claims["sub"] == "system:serviceaccount:default:robot"
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "robot"
    assert body["status"]["expirationTimestamp"].endswith("Z")


async def test_token_authenticates_until_account_deleted(api: tuple[TestClient[Any, Any], APIServer]) -> None:
    client, _ = api
    _, body = await request_token(client)
    auth = {"Authorization": f"Bearer {body['status']['token']}"}
    assert (await client.get("/api/v1/namespaces/default/pods", headers=auth)).status == 200
    await client.delete("/api/v1/namespaces/default/serviceaccounts/robot", headers=ADMIN)
    assert (await client.get("/api/v1/namespaces/default/pods", headers=auth)).status == 401


async def test_rejects_tampered_foreign_and_wrong_audience(api: tuple[TestClient[Any, Any], APIServer]) -> None:
    client, server = api
    _, body = await request_token(client)
    token = body["status"]["token"]
    head, _payload, sig = token.split(".")
    claims = claims_of(token)
    claims["sub"] = "system:serviceaccount:default:other"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    foreign = ServiceAccountTokens(server.storage)  # another key
    other_audience = server.tokens.sign({**claims_of(token), "aud": ["vault"]})
    for bad in (f"{head}.{forged}.{sig}", foreign.sign(claims_of(token)), other_audience, "a.b.c"):
        resp = await client.get("/api/v1/namespaces/default/pods", headers={"Authorization": f"Bearer {bad}"})
        assert resp.status == 401, bad
    _, custom = await request_token(client, audiences=["vault"])
    resp = await client.get("/api/v1/namespaces/default/pods",
                            headers={"Authorization": f"Bearer {custom['status']['token']}"})
    assert resp.status == 401


async def test_expired_token_rejected(api: tuple[TestClient[Any, Any], APIServer]) -> None:
    client, server = api
    _, body = await request_token(client)
    claims = claims_of(body["status"]["token"])
    expired = server.tokens.sign({**claims, "exp": claims["iat"] - 10})
    resp = await client.get("/api/v1/namespaces/default/pods", headers={"Authorization": f"Bearer {expired}"})
    assert resp.status == 401


async def test_validation_and_missing_account(api: tuple[TestClient[Any, Any], APIServer]) -> None:
    client, _ = api
    status, body = await request_token(client, expirationSeconds=599)
    assert status == 422
    assert "may not specify a duration less than 10 minutes" in body["message"]
    status, body = await request_token(client, "ghost")
    assert status == 404 and body["reason"] == "NotFound"


async def test_bound_pod_token(api: tuple[TestClient[Any, Any], APIServer]) -> None:
    client, _ = api
    pod = {"metadata": {"name": "p"}, "spec": {"serviceAccountName": "robot",
                                                "containers": [{"name": "c", "image": "busybox"}]}}
    created = await (await client.post("/api/v1/namespaces/default/pods", headers=ADMIN, json=pod)).json()
    status, body = await request_token(client, expirationSeconds=3607,
                                       boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "p",
                                                       "uid": created["metadata"]["uid"]})
    assert status == 201, body
    claims = claims_of(body["status"]["token"])
    assert claims["kubernetes.io"]["pod"] == {"name": "p", "uid": created["metadata"]["uid"]}
    auth = {"Authorization": f"Bearer {body['status']['token']}"}
    assert (await client.get("/api/v1/namespaces/default/pods/p", headers=auth)).status == 200
    await client.delete("/api/v1/namespaces/default/pods/p", headers=ADMIN)
    assert (await client.get("/api/v1/namespaces/default/pods", headers=auth)).status == 401
    status, _ = await request_token(client, boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "p"})
    assert status == 404


async def test_token_survives_restart_with_same_key(tmp_path: Path) -> None:
    store = MemoryStore()
    await store.start()
    storage = ObjectStorage(store, Registry())
    key = ensure_service_account_key(tmp_path / "pki").read_bytes()
    first, second = ServiceAccountTokens(storage, key), ServiceAccountTokens(storage, key)
    token = first.sign({"iss": first.issuer, "aud": list(first.audiences), "exp": 2**40, "nbf": 0})
    assert second.verify(token) is not None
    assert ServiceAccountTokens(storage).verify(token) is None
    await store.close()


async def test_bound_pod_token_names_its_node(api: tuple[TestClient[Any, Any], APIServer]) -> None:
    client, _ = api
    node = await (await client.post("/api/v1/nodes", headers=ADMIN, json={"metadata": {"name": "n1"}})).json()
    pod = {"metadata": {"name": "q"}, "spec": {"serviceAccountName": "robot", "nodeName": "n1",
                                                "containers": [{"name": "c", "image": "busybox"}]}}
    assert (await client.post("/api/v1/namespaces/default/pods", headers=ADMIN, json=pod)).status == 201
    status, body = await request_token(client, boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "q"})
    assert status == 201, body
    assert claims_of(body["status"]["token"])["kubernetes.io"]["node"] == {"name": "n1",
                                                                           "uid": node["metadata"]["uid"]}
    await client.post("/api/v1/namespaces/default/serviceaccounts", headers=ADMIN, json={"metadata": {"name": "x"}})
    status, body = await request_token(client, "x",
                                       boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "q"})
    assert status == 400 and "different serviceaccount" in body["message"]
