"""Lifecycle hooks: the handler runner's results and wording, and what the syncer does around them (a failed
postStart kills and restarts the container, preStop runs before the stop and within the grace period)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from kubelet_helpers import eventually
from test_probes_actions import http_server
from test_probes_helpers import ScriptedRuntime, probed_node, probed_pod

from nanokube.api.errors import NotFound
from nanokube.kubelet.hooks import HookRunner

JSON = dict[str, Any]
POD: JSON = {"metadata": {"name": "p", "namespace": "default", "uid": "u1"}, "spec": {}}
SPEC: JSON = {"name": "web"}


async def test_exec_hooks_succeed_on_exit_zero_and_report_the_kubelets_message_otherwise() -> None:
    runtime = ScriptedRuntime()
    runner = HookRunner(runtime)
    assert await runner.run(POD, SPEC, "id", {"exec": {"command": ["true"]}}, "") == ""
    runtime.answers["sh -c exit 1"] = (1, b"oops")
    message = await runner.run(POD, SPEC, "id", {"exec": {"command": ["sh", "-c", "exit 1"]}}, "")
    assert message == ('Exec lifecycle hook ([sh -c exit 1]) for Container "web" in Pod "p_default(u1)" failed - '
                       "error: command 'sh -c exit 1' exited with 1: , message: \"oops\"")


async def test_http_hooks_fail_only_when_nothing_answers() -> None:
    runner = HookRunner(ScriptedRuntime())
    async with http_server({"/x": (500, {}, b"")}) as port:
        assert await runner.run(POD, SPEC, "id", {"httpGet": {"path": "/x", "port": port}}, "127.0.0.1") == ""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    message = await runner.run(POD, SPEC, "id", {"httpGet": {"path": "/x", "port": closed}}, "127.0.0.1")
    assert message == (f'HTTP lifecycle hook (/x) for Container "web" in Pod "p_default(u1)" failed - error: '
                       f'Get "http://127.0.0.1:{closed}/x": dial tcp 127.0.0.1:{closed}: connect: connection refused')
    assert await runner.run(POD, SPEC, "id", {"sleep": {"seconds": 0}}, "") == ""


async def test_a_failing_post_start_hook_kills_and_restarts_the_container() -> None:
    async with probed_node() as node:
        node.runtime.answers["setup"] = (1, b"no")
        body = probed_pod("hooked", {"lifecycle": {"postStart": {"exec": {"command": ["setup"]}}}})
        await node.client.create(node.pods, "default", body)

        def restarted(p: JSON) -> bool:
            statuses = p.get("status", {}).get("containerStatuses") or []
            return bool(statuses) and statuses[0]["restartCount"] >= 1 and "waiting" in statuses[0]["state"]

        found = await node.pod_when("hooked", restarted, "the container killed and restarted")
        waiting = found["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] in ("PostStartHookError", "CrashLoopBackOff")
        assert "PostStartHook failed" in await node.event_messages("FailedPostStartHook")
        assert "FailedPostStartHook" in await node.event_messages("Killing")
        assert found["status"]["containerStatuses"][0]["ready"] is False


async def test_pre_stop_runs_before_the_container_is_stopped_and_its_failure_is_an_event() -> None:
    async with probed_node() as node:
        node.runtime.answers["drain"] = (1, b"")
        body = probed_pod("leaving", {"lifecycle": {"preStop": {"exec": {"command": ["drain"]}}}})
        await node.client.create(node.pods, "default", body)
        await node.pod_when("leaving", lambda p: p["status"].get("phase") == "Running", "Running")
        await node.client.delete(node.pods, "default", "leaving")
        await _gone(node, "leaving")
        calls = [what for what, name in node.runtime.calls if name == "web"]
        assert calls[:2] == ["exec drain", "stop"]
        assert await node.event_messages("FailedPreStopHook") == ["PreStopHook failed"]


async def test_a_pre_stop_hook_longer_than_the_grace_period_does_not_hold_the_deletion() -> None:
    async with probed_node() as node:
        node.runtime.hang.add("wait forever")
        body = probed_pod("slow", {"lifecycle": {"preStop": {"exec": {"command": ["wait", "forever"]}}}}, grace=1)
        await node.client.create(node.pods, "default", body)
        await node.pod_when("slow", lambda p: p["status"].get("phase") == "Running", "Running")
        await node.client.delete(node.pods, "default", "slow")
        await _gone(node, "slow")
        assert [what for what, _ in node.runtime.calls] == ["exec wait forever", "stop"]


async def _gone(node: Any, name: str) -> None:
    async def gone() -> bool:
        try:
            await node.pod(name)
        except NotFound:
            return True
        await asyncio.sleep(0.05)
        return False

    await eventually(gone, what=f"{name} deleted")


async def test_the_containers_of_a_deleted_pod_run_their_pre_stop_hooks_together() -> None:
    async with probed_node() as node:
        node.runtime.hang.add("wait forever")
        hook = {"lifecycle": {"preStop": {"exec": {"command": ["wait", "forever"]}}}}
        body = probed_pod("pair", hook, grace=1)
        body["spec"]["containers"].append({"name": "side", "image": "nginx:1.27", **hook})
        await node.client.create(node.pods, "default", body)
        await node.pod_when("pair", lambda p: p["status"].get("phase") == "Running", "Running")
        await node.client.delete(node.pods, "default", "pair")
        await _gone(node, "pair")
        calls = [what for what, _ in node.runtime.calls]
        assert calls == ["exec wait forever", "exec wait forever", "stop", "stop"]  # not hook, stop, hook, stop
