"""The streaming proxy: kube's validation and wording, kubelet location, and relaying logs and WebSockets to a
kubelet server on simulated nodes."""

from __future__ import annotations

import asyncio
import json
import socket

import aiohttp
import pytest
from multidict import MultiDict
from streaming_cluster import streaming_cluster

from nanokube.api.errors import BadRequest, InternalError, Invalid
from nanokube.apiserver.streaming import StreamingProxy
from nanokube.apiserver.streaming.proxy import log_query, stream_query, validate_container
from nanokube.cmd.inprocess import InProcessCluster


def pod(*containers: str, init: tuple[str, ...] = ()) -> dict:
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": c} for c in containers],
                                                "initContainers": [{"name": c} for c in init]}}


def test_container_names_default_and_validate_in_kubes_words() -> None:
    assert validate_container(pod("only"), "") == "only"
    assert validate_container(pod("a", "b", init=("setup",)), "setup") == "setup"
    for body, name, message in [
        (pod("a", "b", init=("setup",)), "", "a container name must be specified for pod p, choose one of: "
                                             "[setup a b]"),
        (pod(), "", "a container name must be specified for pod p"),
        (pod("a"), "x", "container x is not valid for pod p"),
    ]:
        with pytest.raises(BadRequest) as err:
            validate_container(body, name)
        assert err.value.message == message


def test_log_options_translate_and_validate_as_kube() -> None:
    assert log_query("p", {"follow": "true", "previous": "0", "timestamps": "1", "tailLines": "10",
                           "sinceTime": "2026-11-27T18:00:00Z", "limitBytes": "5"}) == {
        "follow": "true", "timestamps": "true", "tailLines": "10", "limitBytes": "5",
        "sinceTime": "2026-11-27T18:00:00Z"}
    with pytest.raises(Invalid) as invalid:
        log_query("p", {"tailLines": "-1", "sinceSeconds": "0"})
    assert invalid.value.message == ('PodLogOptions "p" is invalid: [tailLines: Invalid value: -1: must be greater '
                                     'than or equal to 0, sinceSeconds: Invalid value: 0: must be greater than 0]')
    assert invalid.value.code == 422
    with pytest.raises(Invalid, match="at most one of `sinceTime` or `sinceSeconds` may be specified"):
        log_query("p", {"sinceTime": "2026-11-27T18:00:00Z", "sinceSeconds": "5"})
    with pytest.raises(BadRequest, match="invalid syntax"):
        log_query("p", {"follow": "yes"})


def test_stream_options_become_the_kubelets_query() -> None:
    query = MultiDict([("command", "sh"), ("command", "-c"), ("command", "exit 3"), ("stdin", "true"),
                       ("stdout", "true"), ("tty", "false"), ("container", "c")])
    assert stream_query("exec", query) == [("stdin", "1"), ("stdout", "1"), ("command", "sh"), ("command", "-c"),
                                           ("command", "exit 3")]
    assert stream_query("attach", query) == [("stdin", "1"), ("stdout", "1")]
    assert stream_query("portforward", MultiDict([("ports", "80,8080"), ("ports", "9090")])) == [
        ("port", "80,8080,9090")]
    assert stream_query("portforward", MultiDict()) == []
    with pytest.raises(BadRequest, match='unable to parse "http" as a port'):
        stream_query("portforward", MultiDict([("ports", "http")]))


async def test_the_kubelet_is_found_through_the_annotation_or_the_preferred_address() -> None:
    async with InProcessCluster() as cluster:
        nodes = cluster.resource("", "v1", "nodes")
        proxy = StreamingProxy(cluster.storage, cluster.storage.registry)
        for name, notes, addresses, port in [
            ("n1", {"nanokube.io/kubelet-address": "127.0.0.1"}, [{"type": "InternalIP", "address": "10.0.0.1"}], 1),
            ("n2", {}, [{"type": "Hostname", "address": "n2"}, {"type": "InternalIP", "address": "10.0.0.2"}], 2),
            ("n3", {}, [{"type": "InternalIP", "address": "fd00::3"}], 0),
            ("n4", {}, [], 4),
        ]:
            await cluster.client.create(nodes, "", {"metadata": {"name": name, "annotations": notes}})
            status = {"addresses": addresses, "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}
            await cluster.client.patch(nodes, "", name, {"status": status}, subresource="status")
        assert await proxy.kubelet_base("n1") == "http://127.0.0.1:1"
        assert await proxy.kubelet_base("n2") == "http://10.0.0.2:2"
        assert await proxy.kubelet_base("n3") == "http://[fd00::3]:10250"
        with pytest.raises(InternalError, match="no preferred addresses found"):
            await proxy.kubelet_base("n4")


async def status_error(answer: aiohttp.ClientResponse) -> tuple[int, str, str]:
    body = await answer.json()
    assert body["kind"] == "Status" and body["code"] == answer.status
    return answer.status, body["reason"], body["message"]


async def test_logs_are_relayed_and_kubelet_errors_become_statuses() -> None:
    async with streaming_cluster() as c, aiohttp.ClientSession() as http:
        await c.create_pod("web", annotations={"sim.nanokube.io/log": "hello"})
        await c.create_pod("two", containers=("a", "b"))
        await c.running("web")
        base = f"{c.url}/api/v1/namespaces/default/pods"
        async with http.get(f"{base}/web/log") as answer:
            assert answer.status == 200 and answer.headers["Content-Type"] == "text/plain"
            assert (await answer.text()).splitlines()[1:] == ["hello"]
        async with http.get(f"{base}/web/log?tailLines=1&timestamps=true") as answer:
            assert (await answer.text()).endswith("Z hello\n")
        async with http.get(f"{base}/web/log?previous=true") as answer:
            assert await status_error(answer) == (
                400, "BadRequest", 'previous terminated container "app" in pod "web" not found')
        async with http.get(f"{base}/two/log") as answer:
            assert await status_error(answer) == (
                400, "BadRequest", "a container name must be specified for pod two, choose one of: [a b]")
        async with http.get(f"{base}/web/log?tailLines=-2") as answer:
            assert (await status_error(answer))[:2] == (422, "Invalid")
        async with http.get(f"{base}/ghost/log") as answer:
            assert await status_error(answer) == (404, "NotFound", 'pods "ghost" not found')
        await c.cluster.client.create(c.pods, "default", {"metadata": {"name": "unbound"},
                                                          "spec": {"containers": [{"name": "x", "image": "i"}]}})
        async with http.get(f"{base}/unbound/log") as answer:
            assert (answer.status, await answer.read()) == (200, b"")
        async with http.get(f"{c.url}/api/v1/namespaces/default/services/web/proxy") as answer:
            assert await status_error(answer) == (
                400, "BadRequest", "the proxy subresource of services is not served by nanokube")


async def test_following_a_log_ends_when_the_container_exits() -> None:
    async with streaming_cluster() as c, aiohttp.ClientSession() as http:
        await c.create_pod("job", annotations={"sim.nanokube.io/run-seconds": "0.5"}, restart_policy="Never")
        await c.running("job")
        async with http.get(f"{c.url}/api/v1/namespaces/default/pods/job/log?follow=true") as answer:
            body = await answer.text()
        assert body.splitlines()[-1] == "simulated container app exited with code 0"


async def test_clients_that_leave_release_the_kubelets_streams() -> None:
    async with streaming_cluster(nodes=1) as c, aiohttp.ClientSession() as http:
        await c.create_pod("web")
        await c.running("web")
        runtime = c.sim.nodes["sim-node-0"].runtime
        base = f"{c.url}/api/v1/namespaces/default/pods/web"
        answer = await http.get(f"{base}/log?follow=true")
        assert (await answer.content.readline()).startswith(b"simulated container app")
        ws = await http.ws_connect(f"{base}/attach?stdin=true&stdout=true", protocols=["v5.channel.k8s.io"])
        await ws.receive_bytes()
        assert len(runtime._exit_waiters) == 2  # type: ignore[attr-defined]
        answer.close()  # the log follower hangs up
        await ws.close()  # and so does the attacher

        async def released() -> bool:
            for _ in range(300):
                if len(runtime._exit_waiters) == 0:  # type: ignore[attr-defined]
                    return True
                await asyncio.sleep(0.01)
            return False

        assert await released()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_kubelet_is_an_internal_error() -> None:
    async with streaming_cluster(nodes=1) as c, aiohttp.ClientSession() as http:
        await c.create_pod("web")
        await c.running("web")
        c.sim.stop_node("sim-node-0")  # keep the heartbeat from reporting the real port again
        port = closed_port()
        nodes = c.cluster.resource("", "v1", "nodes")
        await c.cluster.client.patch(nodes, "", "sim-node-0", {"status": {"daemonEndpoints": {
            "kubeletEndpoint": {"Port": port}}}}, subresource="status")
        async with http.get(f"{c.url}/api/v1/namespaces/default/pods/web/log") as answer:
            code, reason, message = await status_error(answer)
        assert (code, reason) == (500, "InternalError")
        assert message.startswith(f'Internal error occurred: Get "http://127.0.0.1:{port}/containerLogs/default/web/app"')


async def test_exec_is_relayed_frame_for_frame() -> None:
    async with streaming_cluster() as c, aiohttp.ClientSession() as http:
        await c.create_pod("web")
        await c.running("web")
        url = (f"{c.url}/api/v1/namespaces/default/pods/web/exec?command=sh&command=-c&command=cat; exit 7"
               "&stdin=true&stdout=true&stderr=true")
        async with http.ws_connect(url, protocols=["v5.channel.k8s.io"]) as ws:
            assert ws.protocol == "v5.channel.k8s.io"
            await ws.send_bytes(b"\x00relayed")
            await ws.send_bytes(b"\xff\x00")
            received = [m.data async for m in ws if m.type is aiohttp.WSMsgType.BINARY]
            assert ws.close_code == 1000
        assert received[:2] == [b"\x01", b"\x01relayed"]
        status = json.loads(received[-1][1:])
        assert received[-1][0] == 3 and status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]


async def test_exec_refusals_reach_the_client_as_kube_sends_them() -> None:
    async with streaming_cluster() as c, aiohttp.ClientSession() as http:
        await c.create_pod("web")
        await c.create_pod("done", annotations={"sim.nanokube.io/run-seconds": "0"}, restart_policy="Never")
        await c.running("web")
        await c.pod_when("done", lambda p: (p.get("status") or {}).get("phase") == "Succeeded")
        base = f"{c.url}/api/v1/namespaces/default/pods"
        query = "?command=true&stdout=true"
        async with http.get(f"{base}/web/exec{query}") as answer:
            assert await status_error(answer) == (400, "BadRequest", "Upgrade request required")
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{base}/done/exec{query}", protocols=["v5.channel.k8s.io"])
        assert refused.value.status == 500
        spdy = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "v4.channel.k8s.io"}
        async with http.post(f"{base}/done/exec{query}", headers=spdy) as answer:
            # kubectl prints "unable to upgrade connection: container not found ("app")"
            assert (answer.status, await answer.text()) == (500, 'container not found ("app")')
        async with http.post(f"{base}/web/exec{query}", headers=spdy) as answer:
            code, reason, message = await status_error(answer)
        assert (code, reason) == (400, "BadRequest")
        assert message.startswith("unable to upgrade connection: nanokube serves exec over WebSocket only")
