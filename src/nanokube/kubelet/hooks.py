"""Container lifecycle hooks: postStart right after a container starts, preStop before it is signalled to stop.

``HookRunner`` is the kubelet's handler runner (``lifecycle/handlers.go``) over the actions probes use too
(``actions.py``): ``exec`` runs the command in the container (non-zero exit fails), ``httpGet`` sends one GET
(only a connection failure fails; the status code is not looked at, as the kubelet's), ``sleep`` waits.
``run`` returns "" on success or the kubelet's message for the failure (``Exec lifecycle hook ([sh -c exit 1])
for Container "web" in Pod "web_default(uid)" failed - error: ..., message: "..."``): a failed postStart's
message becomes the container's ``PostStartHookError`` waiting message; Events only say ``PostStartHook failed``
/ ``PreStopHook failed``, as the kubelet's (a hook's output may hold secrets).

``ContainerLifecycle`` is the syncer's side of it: postStart after a start, run to completion (a failure kills
the container, with ``FailedPostStartHook`` and ``Killing`` Events); preStop before every graceful stop, waited
for at most the grace period, the whole seconds it took taken off the grace the stop gets (at least 2 s left),
as the kubelet's ``killContainer`` does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .actions import KUBE_VERSION, ActionError, get_once, go_quote, http_request
from .runtime.interface import ContainerState, ContainerStatus, Runtime, RuntimeFailure

log = logging.getLogger(__name__)
JSON = dict[str, Any]
MINIMUM_GRACE = 2  # seconds a container always gets to stop after its preStop hook (the kubelet's minimum)


def go_slice(items: list[str]) -> str:
    """Go's ``%v`` of a []string: ``[sh -c exit 1]``."""
    return "[" + " ".join(items) + "]"


def pod_ref(pod: JSON) -> str:
    """The kubelet's format.Pod: ``name_namespace(uid)``."""
    meta = pod["metadata"]
    return f"{meta['name']}_{meta.get('namespace', '')}({meta['uid']})"


class HookRunner:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def run(self, pod: JSON, spec: JSON, container_id: str, handler: JSON, pod_ip: str) -> str:
        """Run one lifecycle handler to completion; "" when it succeeded, else the kubelet's failure message."""
        name = spec.get("name", "")
        if handler.get("exec") is not None:
            return await self._exec(pod, name, container_id, list(handler["exec"].get("command") or []))
        if handler.get("httpGet") is not None:
            return await self._http(pod, spec, handler["httpGet"], pod_ip)
        if handler.get("sleep") is not None:
            await asyncio.sleep(float(handler["sleep"].get("seconds") or 0))
            return ""
        if handler.get("tcpSocket") is not None:  # deprecated in hooks, accepted and ignored by the kubelet
            return ""
        return f"cannot run handler: unknown handler type in Container {go_quote(name)} in Pod " \
               f"{go_quote(pod_ref(pod))}"

    async def _exec(self, pod: JSON, name: str, container_id: str, command: list[str]) -> str:
        try:
            result = await self.runtime.exec_sync(container_id, command, 0)
        except RuntimeFailure as err:
            error, output = str(err), ""
        else:
            if result.exit_code == 0:
                return ""
            output = (result.stdout + result.stderr).decode("utf-8", "replace")
            error = f"command '{' '.join(command)}' exited with {result.exit_code}: " \
                    f"{result.stderr.decode('utf-8', 'replace')}"
        return f"Exec lifecycle hook ({go_slice(command)}) for Container {go_quote(name)} in Pod " \
               f"{go_quote(pod_ref(pod))} failed - error: {error}, message: {go_quote(output)}"

    async def _http(self, pod: JSON, spec: JSON, action: JSON, pod_ip: str) -> str:
        path = str(action.get("path") or "")
        try:
            request = http_request(action, spec, pod_ip, f"kube-lifecycle/{KUBE_VERSION}")
            error = await _get_ignoring_status(request.url, request.headers)
        except ActionError as err:
            error = str(err)
        if not error:
            return ""
        return f"HTTP lifecycle hook ({path}) for Container {go_quote(spec.get('name', ''))} in Pod " \
               f"{go_quote(pod_ref(pod))} failed - error: {error}"


async def _get_ignoring_status(url: str, headers: tuple[tuple[str, str], ...]) -> str:
    """GET ``url`` (no timeout beyond the caller's); "" once any response came back, else the error."""
    try:
        await get_once(url, headers)
    except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError) as err:
        return f"Get {go_quote(url)}: {err}"
    return ""



EventFn = Callable[[JSON, str, str, str], Awaitable[None]]  # (pod, type, reason, message)


class ContainerLifecycle:
    """The syncer's side of hooks: postStart after a start, preStop before a stop, with the kubelet's Events
    and grace-period accounting. Without a ``HookRunner`` (simulated nodes) hooks are skipped."""

    def __init__(self, runtime: Runtime, hooks: HookRunner | None, event: EventFn,
                 host_ips: tuple[str, ...] = ()) -> None:
        self.runtime = runtime
        self.hooks = hooks
        self.event = event
        self.host_ips = host_ips

    async def post_start(self, pod: JSON, spec: JSON, container_id: str, sandbox_id: str, grace: float) -> str:
        """Run the postStart hook (to completion, as the kubelet); if it fails, kill the container and return
        the failure message (the container's ``PostStartHookError`` waiting message), else ""."""
        handler = (spec.get("lifecycle") or {}).get("postStart")
        if handler is None or self.hooks is None:
            return ""
        message = await self.hooks.run(pod, spec, container_id, handler, await self.pod_ip(pod, sandbox_id))
        if not message:
            return ""
        log.info("pod %s: %s", pod_ref(pod), message)
        # As the kubelet: the Event does not carry the hook's output (it may hold secrets); the status does.
        await self.event(pod, "Warning", "FailedPostStartHook", "PostStartHook failed")
        await self.event(pod, "Normal", "Killing", "FailedPostStartHook")
        await self.stop(pod, spec, await self.runtime.container_status(container_id), grace)
        return message

    async def stop(self, pod: JSON, spec: JSON | None, container: ContainerStatus, grace: float) -> None:
        """Run the preStop hook (if any, within ``grace``), then stop the container with the grace left."""
        handler = ((spec or {}).get("lifecycle") or {}).get("preStop")
        if spec is not None and handler is not None and self.hooks is not None and grace > 0 \
                and container.state is ContainerState.RUNNING:
            grace = await self._pre_stop(pod, spec, container, handler, grace)
        await self.runtime.stop_container(container.id, grace)

    async def _pre_stop(self, pod: JSON, spec: JSON, container: ContainerStatus, handler: JSON,
                        grace: float) -> float:
        """The kubelet's executePreStopHook: wait for the hook at most ``grace`` seconds; returns the grace left
        for the stop (whole seconds spent are taken off, and at least 2 s are left)."""
        assert self.hooks is not None
        loop = asyncio.get_running_loop()
        began = loop.time()
        ip = await self.pod_ip(pod, container.sandbox_id)
        hook = asyncio.ensure_future(self.hooks.run(pod, spec, container.id, handler, ip))
        done, _ = await asyncio.wait({hook}, timeout=grace)
        if hook in done:
            error = hook.exception()
            message = str(error) if error is not None else hook.result()
            if message:
                log.info("pod %s: %s", pod_ref(pod), message)
                await self.event(pod, "Warning", "FailedPreStopHook", "PreStopHook failed")
        else:
            hook.cancel()
            log.info("pod %s: preStop hook of %s not completed in %gs", pod_ref(pod), spec.get("name"), grace)
        return max(grace - int(loop.time() - began), MINIMUM_GRACE)

    async def pod_ip(self, pod: JSON, sandbox_id: str) -> str:
        """Where an httpGet hook goes by default: the sandbox's IP (the node's for host-network Pods)."""
        if pod["spec"].get("hostNetwork"):
            return self.host_ips[0] if self.host_ips else ""
        try:
            return (await self.runtime.pod_sandbox_status(sandbox_id)).ip
        except RuntimeFailure:
            return ""
