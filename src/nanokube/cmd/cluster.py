"""Wiring a control plane: store, API server, in-process client and controllers, from settings.

The only place that knows every layer. ``ControlPlane.run`` is what ``nanokube up`` and ``nanokube server``
run; tests start it in-process too.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import ipaddress
import logging
import os
import secrets
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from nanokube.api.registry import Registry
from nanokube.apiserver.app import APIServer, APIServerSettings
from nanokube.apiserver.storage import DeleteOptions, ListOptions, ObjectStorage
from nanokube.apiserver.strategies import StrategyOptions
from nanokube.apiserver.streaming import StreamingProxy, StreamingSettings
from nanokube.client.leaderelection import LeaderElector, LeaseSettings
from nanokube.client.local import LocalClient
from nanokube.controllers.manager import ControllerManager, default_controllers
from nanokube.controllers.nodeipam import NodeIPAMController, NodeIPAMSettings
from nanokube.controllers.nodelifecycle import NodeLifecycleSettings
from nanokube.controllers.rootcapublisher import RootCASettings
from nanokube.controllers.volumes import VolumeSettings, host_directory_hooks
from nanokube.dns.server import DNSServer, DNSSettings
from nanokube.kubelet.local import LocalNode, LocalNodeSettings, native_available
from nanokube.kubelet.runtime.process_node import ProcessNode
from nanokube.kubelet.server import KubeletServer, KubeletServerSettings
from nanokube.kubelet.sim import SimSettings, Simulator
from nanokube.proxy.backends import choose_backend
from nanokube.proxy.proxier import Proxier, ProxySettings
from nanokube.scheduler.scheduler import Scheduler, SchedulerSettings
from nanokube.store.interface import Store
from nanokube.store.memory import MemoryStore
from nanokube.store.sqlite import SqliteStore
from nanokube.util.certs import (
    ensure_node_token,
    ensure_pki,
    ensure_service_account_key,
    kubelet_credential,
    write_kubeconfig,
)

from .settings import ClusterSettings

log = logging.getLogger(__name__)


class StartupError(Exception):
    """A failure to start that the user can fix; the message says how."""


def check_data_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        raise StartupError(f"cannot create the data directory {path}: {err.strerror}. Choose another with "
                           "--data-dir, or run as a user who may write there.") from err
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise StartupError(f"the data directory {path} is not readable and writable by this user. Fix its "
                           "permissions or choose another with --data-dir.")


def lock_data_dir(path: Path) -> int:
    """Hold an exclusive lock on the data directory for the life of the process; one cluster per directory."""
    fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise StartupError(f"the data directory {path} is in use by another nanokube (pid {holder}). Stop it, "
                           "or start this one with another --data-dir.") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def open_store(settings: ClusterSettings) -> Store:
    if settings.store == "memory":
        return MemoryStore(window=settings.watch_history)
    return SqliteStore(settings.db_path, window=settings.watch_history)


def local_client(storage: ObjectStorage, server: APIServer) -> LocalClient:
    return LocalClient(storage, ListOptions, DeleteOptions, subresources=server.rest.sub)


async def run_scheduler(client: LocalClient, identity: str, stop: asyncio.Event) -> None:
    """The scheduler, while this process holds the ``kube-scheduler`` Lease (one scheduler acts at a time)."""
    elector = LeaderElector(client, LeaseSettings("kube-scheduler", identity))

    async def lead(done: asyncio.Event) -> None:
        await Scheduler(client, SchedulerSettings()).run(stop=done)

    await elector.run(lead, stop=stop)


def serving_hosts(host: str) -> list[str]:
    """The names the serving certificate must cover: ``host``, or every local IPv4 address when the server
    listens on all of them (agents on other machines dial one of those)."""
    if host not in ("0.0.0.0", "::", ""):
        return [host]
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True,
                             timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [f[f.index("inet") + 1].split("/")[0] for f in (line.split() for line in out.splitlines())
            if "inet" in f]


def in_cluster_names(service_cidr: str) -> list[str]:
    """The names Pods reach the API server by: the ``kubernetes`` Service's ClusterIP (the first address of the
    service range) and its DNS names, which the serving certificate must cover too."""
    first = str(ipaddress.ip_network(service_cidr, strict=False).network_address + 1)
    return [first, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local"]


def join_hint(url: str, token_file: Path) -> str:
    """How to add a worker, as the user would type it on the other machine."""
    hint = f"join a node: nanokube agent --server {url} --token $(cat {token_file})"
    if "://127." in url or "://localhost" in url:
        hint += "   (listen on an address other machines reach: --host)"
    return hint


async def _logged(work: Awaitable[None], what: str) -> None:
    """Run a component; if it fails, say so in the log instead of only at shutdown."""
    try:
        await work
    except Exception:
        log.exception("%s stopped", what)
        raise


class ControlPlane:
    def _local_node(self, client: LocalClient, token: str) -> LocalNode | ProcessNode | None:
        mode = self.settings.node
        if mode == "none":
            return None
        s = self.settings
        ok, why = native_available()
        if mode == "process" or not ok:
            if mode == "native":
                raise StartupError(f"cannot run the local node with real containers: {why}. Run as root after "
                                   "`make up` installed runc and the CNI plugins, or use --node none.")
            if mode == "auto":
                self.progress(f"WARNING: no real containers here ({why}): the local node falls back to the process "
                              "runtime (plain processes, NOT isolated; --node none for no local node)")
            return ProcessNode(client, LocalNodeSettings(data_dir=s.data_dir, name=s.node_name,
                                                         pod_cidr=s.node_pod_cidr, kubelet_token=token))
        # Agents reach this node where they reach the API server, when that is a specific address.
        address = s.host if s.host not in ("0.0.0.0", "::", "") and not s.host.startswith("127.") else ""
        return LocalNode(client, LocalNodeSettings(data_dir=s.data_dir, name=s.node_name, pod_cidr=s.node_pod_cidr,
                                                   bridge=s.node_bridge, kubelet_token=token, address=address,
                                                   cluster_cidr=s.pod_cidr, cluster_dns=(self._dns_ip(),),
                                                   netns_prefix=_netns_prefix(s.node_bridge)))

    def _proxy(self, client: LocalClient, node_name: str, *, userspace: bool = False) -> Proxier:
        """kube-proxy for the local node: nftables table ``nanokube`` (``NANOKUBE_PROXY_TABLE`` overrides), or
        the userspace proxy where nftables cannot be programmed and for the process runtime (``userspace``)."""
        table = os.environ.get("NANOKUBE_PROXY_TABLE", "nanokube")
        backend, what = choose_backend(table, self.settings.service_cidr, userspace=userspace)
        self.progress(f"service proxy: {what}")
        return Proxier(client, backend, ProxySettings(node_name=node_name, cluster_cidr=self.settings.pod_cidr))

    def _pod_gateway(self) -> str:
        """The local real node's pod-bridge gateway (first address of its pod range); "" without one."""
        if self.settings.node not in ("native", "auto") or not native_available()[0]:
            return ""
        return str(ipaddress.ip_network(self.settings.node_pod_cidr, strict=False).network_address + 1)

    def _dns_ip(self) -> str:
        """The kube-dns Service address: .10 of the service range, as kubeadm and k3s choose it."""
        return str(ipaddress.ip_network(self.settings.service_cidr, strict=False).network_address + 10)

    def _dns(self, client: LocalClient, node_name: str) -> DNSServer:
        """Cluster DNS for the local node's Pods on its pod bridge gateway (the first address of the node's pod
        range), port 53 (``NANOKUBE_DNS_PORT`` overrides); kube-system/kube-dns at .10 of the service range
        leads there. Names outside the cluster go to the nameservers of this machine's /etc/resolv.conf."""
        gateway = str(ipaddress.ip_network(self.settings.node_pod_cidr, strict=False).network_address + 1)
        dns_ip = self._dns_ip()
        port = int(os.environ.get("NANOKUBE_DNS_PORT", "53"))
        self.progress(f"cluster DNS: {gateway}:{port} (Service kube-system/kube-dns at {dns_ip})")
        return DNSServer(client, DNSSettings(listen=gateway, port=port, cluster_ip=dns_ip, node_name=node_name))

    def __init__(self, settings: ClusterSettings, *, progress: Callable[[str], None] = print,
                 started: float | None = None) -> None:
        self.started = started
        self.settings = settings
        self.progress = progress
        self.store: Store | None = None
        self.server: APIServer | None = None
        self.client: LocalClient | None = None
        self.ready = asyncio.Event()
        self.url = ""

    async def run(self, *, stop: asyncio.Event) -> None:
        started = self.started if self.started is not None else time.monotonic()
        s = self.settings
        check_data_dir(s.data_dir)
        lock = lock_data_dir(s.data_dir)
        self.progress(f"data directory: {s.data_dir}")
        tls_settings: dict[str, object] = {}
        tokens: list[str] = []
        scheme = "http"
        node_token = ""
        # Pods of the local real node reach the API server at their bridge's gateway (the Endpoints of the
        # kubernetes Service); the server listens there too.
        pod_gateway = self._pod_gateway()
        if s.tls:
            pki = ensure_pki(s.data_dir / "pki", [*serving_hosts(s.host), *in_cluster_names(s.service_cidr),
                                                  *([pod_gateway] if pod_gateway else [])])
            tls_settings = {"cert_file": pki.server_cert, "key_file": pki.server_key,
                            "service_account_key": ensure_service_account_key(s.data_dir / "pki"),
                            "service_account_admission": True}
            token_file = s.data_dir / "node-token"
            node_token = ensure_node_token(token_file, pki.ca_cert)  # agents join with it
            tokens = [pki.token, node_token]
            scheme = "https"
        store = self.store = open_store(s)
        try:
            await store.start()
        except Exception as err:
            raise StartupError(f"cannot open the store at {s.db_path}: {err}. If another nanokube is running "
                               "with this data directory, stop it first.") from err
        self.progress(f"store: {s.store} at revision {store.revision}")
        storage = ObjectStorage(store, Registry(), StrategyOptions(pod_toleration_seconds=s.pod_toleration_seconds))
        # The API server's credential towards kubelets: derived from the node token, which agents hold too.
        kubelet_token = kubelet_credential(node_token) if node_token else secrets.token_urlsafe(24)
        server = self.server = APIServer(APIServerSettings(host=s.host, port=s.port, tokens=tokens,
                                                           service_cidr=s.service_cidr, service_endpoint=pod_gateway,
                                                           **tls_settings), storage)  # type: ignore[arg-type]
        server.rest.sub.streaming = StreamingProxy(storage, storage.registry,
                                                   StreamingSettings(kubelet_token=kubelet_token))
        client = self.client = local_client(storage, server)
        tasks: list[asyncio.Task[None]] = []
        bound = asyncio.get_running_loop().create_future()
        server_task = asyncio.create_task(server.run(stop=stop, started=bound.set_result), name="apiserver")
        tasks.append(server_task)
        try:
            done, _ = await asyncio.wait({server_task, bound}, return_when=asyncio.FIRST_COMPLETED)
            if server_task in done:
                failure = server_task.exception()
                if isinstance(failure, OSError) and failure.errno == errno.EADDRINUSE:
                    raise StartupError(f"port {s.port} on {s.host} is already in use (is another nanokube or "
                                       "kube-apiserver running?). Stop it, or pick another port with --port.")
                if failure is not None:
                    raise failure
            port = bound.result()
            self.url = f"{scheme}://{s.host}:{port}"
            if s.tls:
                write_kubeconfig(s.kubeconfig, self.url, pki.ca_cert, pki.token)
                self.progress(f"kubeconfig: {s.kubeconfig}")
            self.progress(f"API server: {self.url}")
            if node_token:
                self.progress(f"node token: {token_file}; {join_hint(self.url, token_file)}")
            lifecycle = NodeLifecycleSettings(grace_period=s.node_grace_period,
                                              monitor_period=min(5.0, s.node_grace_period / 4))
            local = self._local_node(client, kubelet_token)
            volumes = VolumeSettings(storage_dir=str(s.data_dir / "storage"))
            if isinstance(local, LocalNode):  # local-path volumes of this machine's node: make and remove them
                volumes.create_dir, volumes.remove_dir = host_directory_hooks(local.name, volumes.storage_dir)
            ipam = NodeIPAMSettings(cluster_cidr=s.pod_cidr)
            root_ca = RootCASettings(pki.ca_cert.read_text()) if s.tls else None
            manager = ControllerManager(client, [*default_controllers(lifecycle, volumes, root_ca),
                                                 lambda c: NodeIPAMController(c, ipam)])
            tasks.append(asyncio.create_task(manager.run(stop=stop), name="controllers"))
            tasks.append(asyncio.create_task(run_scheduler(client, manager.identity, stop), name="scheduler"))
            if local is not None:
                tasks.append(asyncio.create_task(local.run(stop=stop), name="local-node"))
                self.progress(f"local node: {local.name} ({local.summary})" if isinstance(local, ProcessNode) else
                              f"local node: {local.name} (real containers with runc, pod network "
                              f"{local.settings.pod_cidr})")
                proxy = self._proxy(client, local.name, userspace=isinstance(local, ProcessNode))
                tasks.append(asyncio.create_task(proxy.run(stop=stop), name="proxy"))
                if isinstance(local, ProcessNode):  # its Pods share this machine's /etc/resolv.conf
                    self.progress("cluster DNS: not with the process runtime (Pods use this machine's resolver)")
                else:
                    dns = self._dns(client, local.name)
                    tasks.append(asyncio.create_task(_logged(dns.run(stop=stop), "cluster DNS"), name="dns"))
            if s.sim_nodes:
                sim = Simulator(client, SimSettings(nodes=s.sim_nodes, cpu=s.sim_cpu, memory=s.sim_memory,
                                                    pod_cidr_base="10.42.1.0" if local is not None else "10.42.0.0",
                                                    pods=s.sim_pods, labels=dict(s.sim_labels),
                                                    taints=list(s.sim_taints)))
                # One kubelet server answers logs, exec, attach and port-forward for every simulated node.
                kubelet = KubeletServer(sim.agent, KubeletServerSettings(host="127.0.0.1", port=0,
                                                                         token=kubelet_token))
                kubelet_port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                tasks.append(asyncio.create_task(kubelet.run(stop=stop, started=kubelet_port.set_result),
                                                 name="kubelet-server"))
                sim.serve_kubelet("127.0.0.1", await kubelet_port)
                tasks.append(asyncio.create_task(sim.run(stop=stop), name="simulator"))
                self.progress(f"simulated nodes: {s.sim_nodes} ({s.sim_cpu} cpu, {s.sim_memory} memory, "
                              f"{s.sim_pods} pods each; no containers run)")
            self.progress(f"ready in {time.monotonic() - started:.2f}s")
            self.ready.set()
            await stop.wait()
        finally:
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 10)
            await store.close()
            os.close(lock)


def _netns_prefix(bridge: str) -> str:
    """Pod namespaces of the node on the default bridge are nk-<uid>; a node on another bridge (several
    ``nanokube up`` on one machine) names them <bridge>-<uid>, so that one node starting does not remove another's
    as leftovers of its own."""
    return "nk-" if bridge == "nk0" else f"{bridge}-"
