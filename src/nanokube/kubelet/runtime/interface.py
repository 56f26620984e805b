"""The container runtime contract every node agent programs against, shaped after the CRI.

The kubelet talks to its runtime only through ``Runtime`` (the CRI's RuntimeService and ImageService in one
Protocol), so the same pod worker drives the ``native`` runc runtime, the ``process`` runtime and the ``fake``
runtime of simulated nodes. Calls and records follow the CRI's (``k8s.io/cri-api`` v1) names and meaning,
trimmed to what nanokube uses, with Python types: ids are strings, times are epoch seconds (floats), and
failures raise ``RuntimeFailure`` subclasses whose ``reason`` is the word the kubelet shows in a container's
waiting state (``ErrImagePull``, ``CreateContainerError``...).

Three CRI ideas carry the design:

* A Pod is a *sandbox* (network namespace, IP, shared resources) holding *containers*; containers are never
  restarted in place: a restart is a new container with ``attempt`` one higher, and the kubelet reads restart
  counts and last states from the containers the runtime still remembers.
* The runtime pushes container state changes (``subscribe``; the CRI's GetContainerEvents), so an agent
  with many Pods learns of an exit without polling.
* State lives in the runtime: ``recover`` re-adopts what a previous agent left running, after which the
  ``list_*`` calls return it, so an agent restart does not restart containers.

Streaming (exec, attach, port-forward, logs) returns in-process handles rather than the CRI's streaming-server
URLs; the agent's HTTP server bridges them to the API server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

# Labels the agent puts on sandboxes and containers (the kubelet's own, so tools that know them still work).
POD_NAME_LABEL = "io.kubernetes.pod.name"
POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
POD_UID_LABEL = "io.kubernetes.pod.uid"
CONTAINER_NAME_LABEL = "io.kubernetes.container.name"
# Which list of the Pod spec a container comes from: "init", "sidecar" (restartable init), "regular".
CONTAINER_KIND_LABEL = "io.nanokube.container.kind"


class SandboxState(StrEnum):
    READY = "ready"
    NOT_READY = "notready"


class ContainerState(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


class EventType(StrEnum):
    CREATED = "created"
    STARTED = "started"
    STOPPED = "stopped"
    DELETED = "deleted"


# -- errors -----------------------------------------------------------------------------------------------

class RuntimeFailure(Exception):
    """A runtime call failed; ``reason`` is what the kubelet reports (a container's waiting reason)."""

    reason = "RuntimeError"


class NotFoundFailure(RuntimeFailure):
    reason = "NotFound"


class ImagePullFailure(RuntimeFailure):
    reason = "ErrImagePull"


class CreateContainerFailure(RuntimeFailure):
    reason = "CreateContainerError"


class StartContainerFailure(RuntimeFailure):
    reason = "RunContainerError"


class SandboxFailure(RuntimeFailure):
    reason = "FailedCreatePodSandBox"


# -- records ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PodSandboxMetadata:
    name: str
    namespace: str
    uid: str
    attempt: int = 0


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int = 0
    protocol: str = "TCP"
    host_ip: str = ""


@dataclass(frozen=True)
class DNSConfig:
    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass
class PodSandboxConfig:
    metadata: PodSandboxMetadata
    hostname: str = ""
    host_network: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    port_mappings: list[PortMapping] = field(default_factory=list)
    dns: DNSConfig | None = None
    log_directory: str = ""
    cgroup_parent: str = ""


@dataclass
class PodSandboxStatus:
    id: str
    metadata: PodSandboxMetadata
    state: SandboxState
    created_at: float
    ip: str = ""
    additional_ips: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerMetadata:
    name: str
    attempt: int = 0


@dataclass(frozen=True)
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False
    propagation: str = "private"  # private | rslave | rshared


@dataclass(frozen=True)
class LinuxResources:
    cpu_period: int = 0
    cpu_quota: int = 0
    cpu_shares: int = 0
    memory_limit_bytes: int = 0
    pids_limit: int = 0


@dataclass
class ContainerConfig:
    metadata: ContainerMetadata
    image: str
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    working_dir: str = ""
    envs: list[tuple[str, str]] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_path: str = ""
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    resources: LinuxResources | None = None


@dataclass
class ContainerStatus:
    id: str
    sandbox_id: str
    metadata: ContainerMetadata
    state: ContainerState
    created_at: float
    image: str
    image_ref: str
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""  # Completed | Error | OOMKilled | ...
    message: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_path: str = ""


@dataclass(frozen=True)
class ImageSpec:
    image: str
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AuthConfig:
    username: str = ""
    password: str = ""
    auth: str = ""
    identity_token: str = ""
    registry_token: str = ""
    server_address: str = ""


@dataclass(frozen=True)
class Image:
    id: str
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    size: int = 0


@dataclass(frozen=True)
class ContainerEvent:
    """A container changed state (the CRI's ContainerEventResponse)."""

    container_id: str
    type: EventType
    at: float
    pod_uid: str
    sandbox_id: str = ""


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""


@dataclass(frozen=True)
class ContainerStats:
    container_id: str
    at: float
    cpu_usage_core_nanoseconds: int = 0
    memory_working_set_bytes: int = 0
    writable_layer_bytes: int = 0


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    since_time: float | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


@dataclass(frozen=True)
class RuntimeVersion:
    runtime_name: str  # the scheme of containerIDs: "<name>://<id>"
    runtime_version: str
    runtime_api_version: str = "v1"


@dataclass(frozen=True)
class RuntimeCondition:
    type: str  # RuntimeReady | NetworkReady
    status: bool
    reason: str = ""
    message: str = ""


# -- streaming --------------------------------------------------------------------------------------------

class ExecSession(Protocol):
    """A running exec or attach: write stdin, read stdout/stderr, resize a tty, wait for the exit code."""

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(stream, data) chunks: stream 1 is stdout, 2 is stderr; ends when the process does."""

    async def resize(self, width: int, height: int) -> None: ...

    async def wait(self) -> int: ...


class PortStream(Protocol):
    """One forwarded TCP connection into a sandbox's network namespace."""

    async def read(self, n: int = 65536) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


EventListener = Callable[[ContainerEvent], None]


# -- the services -----------------------------------------------------------------------------------------

class RuntimeService(Protocol):
    async def version(self) -> RuntimeVersion: ...

    async def status(self) -> list[RuntimeCondition]: ...

    async def update_runtime_config(self, pod_cidr: str) -> None:
        """The node's pod CIDR, once known (sandbox IPs come from it)."""

    # Sandboxes.
    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        """Create and start a sandbox (network included); returns its id. May take a while."""

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Stop every container of the sandbox and release its network (the IP). Idempotent."""

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        """Remove the sandbox and its containers. Idempotent."""

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus: ...

    async def list_pod_sandboxes(self, pod_uid: str | None = None) -> list[PodSandboxStatus]: ...

    # Containers.
    async def create_container(self, sandbox_id: str, config: ContainerConfig,
                               sandbox_config: PodSandboxConfig) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, timeout: float) -> None:
        """Signal the container to stop, kill it after ``timeout`` seconds; returns once it has exited."""

    async def remove_container(self, container_id: str) -> None: ...

    async def container_status(self, container_id: str) -> ContainerStatus: ...

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]: ...

    def subscribe(self, listener: EventListener) -> None:
        """Call ``listener`` (on the event loop, without awaiting) whenever a container changes state."""

    async def recover(self) -> None:
        """Re-adopt sandboxes and containers a previous agent left running (after a restart)."""

    # Streaming and stats.
    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 0) -> ExecResult: ...

    async def exec(self, container_id: str, cmd: list[str], *, stdin: bool, tty: bool) -> ExecSession: ...

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> ExecSession: ...

    async def port_forward(self, sandbox_id: str, port: int) -> PortStream: ...

    def logs(self, container_id: str, options: LogOptions) -> AsyncIterator[bytes]:
        """The container's log lines (CRI log format decoded: raw output, with timestamps if asked)."""

    async def container_stats(self, container_id: str) -> ContainerStats: ...


class ImageService(Protocol):
    async def pull_image(self, image: ImageSpec, auth: AuthConfig | None = None) -> str:
        """Pull ``image``; returns its reference (the imageID a container status reports)."""

    async def image_status(self, image: ImageSpec) -> Image | None: ...

    async def list_images(self) -> list[Image]: ...

    async def remove_image(self, image: ImageSpec) -> None: ...


class Runtime(RuntimeService, ImageService, Protocol):
    """What a node agent needs of its container runtime."""
