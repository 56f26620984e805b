"""The Python client's own informer (``kubernetes.informer.SharedInformer``, shipped with client 37) against
``nanokube up``: it lists, watches, keeps a cache, and relists after its watch expires (410).

To make the watch expire on purpose, the informer talks to the server through a small TCP relay the test can
pause: while it is paused the informer's watch is cut and its reconnection is held back, the test writes more
changes than a ``--watch-history 20`` server remembers, and on resume the informer asks to resume from a
forgotten revision, gets 410 Expired, and must relist to catch up.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.informer import ADDED, DELETED, ERROR, MODIFIED, SharedInformer

from .cluster import Cluster, eventually


@pytest.fixture
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    with cluster.api_client() as api_client:
        yield api_client


_eventually = partial(eventually, timeout=15.0, interval=0.05)


def _cm(name: str, **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data or None)


class Recorder:
    """Event handlers for every informer event type, recording (type, name, data) in order."""

    def __init__(self, informer: SharedInformer) -> None:
        self.events: list[tuple[str, str, dict[str, str] | None]] = []
        self.errors: list[Any] = []
        self._lock = threading.Lock()
        for kind in (ADDED, MODIFIED, DELETED):
            informer.add_event_handler(kind, self._handler(kind))
        informer.add_event_handler(ERROR, self._error)

    def _handler(self, kind: str) -> Callable[[Any], None]:
        def record(obj: Any) -> None:
            with self._lock:
                self.events.append((kind, obj.metadata.name, obj.data))
        return record

    def _error(self, err: Any) -> None:
        with self._lock:
            self.errors.append(err)

    def snapshot(self) -> list[tuple[str, str, dict[str, str] | None]]:
        with self._lock:
            return [e for e in self.events if e[1] != "kube-root-ca.crt"]

    def has(self, kind: str, name: str) -> bool:
        return any(e[0] == kind and e[1] == name for e in self.snapshot())


ROOT_CA = "kube-root-ca.crt"  # every namespace has it (root-ca-cert-publisher), as on any cluster


def _cached(informer: SharedInformer) -> dict[str, dict[str, str] | None]:
    return {obj.metadata.name: obj.data for obj in informer.cache.list() if obj.metadata.name != ROOT_CA}


def test_informer_sees_adds_updates_and_deletes(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, _cm("before", a="1"))
    informer = SharedInformer(core.list_namespaced_config_map, namespace=namespace)
    recorder = Recorder(informer)
    informer.start()
    try:
        _eventually(lambda: recorder.has(ADDED, "before"), "the listed object")
        core.create_namespaced_config_map(namespace, _cm("a", x="1"))
        core.create_namespaced_config_map(namespace, _cm("b", y="1"))
        core.patch_namespaced_config_map("a", namespace, {"data": {"x": "2"}})
        core.delete_namespaced_config_map("b", namespace)
        _eventually(lambda: recorder.has(DELETED, "b"), "the deletion of b")
        assert recorder.snapshot() == [(ADDED, "before", {"a": "1"}), (ADDED, "a", {"x": "1"}),
                                       (ADDED, "b", {"y": "1"}), (MODIFIED, "a", {"x": "2"}),
                                       (DELETED, "b", {"y": "1"})]
        assert _cached(informer) == {"before": {"a": "1"}, "a": {"x": "2"}}
        # A write that changes nothing is no event.
        core.patch_namespaced_config_map("a", namespace, {"data": {"x": "2"}})
        core.patch_namespaced_config_map("before", namespace, {"data": {"a": "3"}})
        _eventually(lambda: _cached(informer)["before"] == {"a": "3"}, "the update of before")
        assert recorder.snapshot()[5:] == [(MODIFIED, "before", {"a": "3"})]
        assert recorder.errors == []
    finally:
        informer.stop()


def test_informer_with_a_label_selector(api: client.ApiClient, namespace: str) -> None:
    """Objects that start or stop matching the selector arrive as ADDED and DELETED."""
    core = client.CoreV1Api(api)
    informer = SharedInformer(core.list_namespaced_config_map, namespace=namespace, label_selector="tier=front")
    recorder = Recorder(informer)
    informer.start()
    try:
        time.sleep(0.3)  # let the initial (empty) list and the watch start
        core.create_namespaced_config_map(namespace, _cm("x"))
        core.patch_namespaced_config_map("x", namespace, {"metadata": {"labels": {"tier": "front"}}})
        _eventually(lambda: recorder.has(ADDED, "x"), "x entering the selection")
        core.patch_namespaced_config_map("x", namespace, {"metadata": {"labels": {"tier": "back"}}})
        _eventually(lambda: recorder.has(DELETED, "x"), "x leaving the selection")
        assert [e[:2] for e in recorder.snapshot()] == [(ADDED, "x"), (DELETED, "x")]
        assert _cached(informer) == {}
    finally:
        informer.stop()


# -- relisting after 410 ------------------------------------------------------------------------------------
class Relay:
    """A TCP relay to the API server that can be paused: pausing cuts every open connection and holds new ones
    (accepted, not forwarded) until ``resume``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._held: list[socket.socket] = []
        self._paused = False
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                if self._paused:
                    self._held.append(conn)
                    continue
            self._forward(conn)

    def _forward(self, conn: socket.socket) -> None:
        try:
            up = socket.create_connection(self.upstream)
        except OSError:
            conn.close()
            return
        with self._lock:
            self._open += [conn, up]
        for src, dst in ((conn, up), (up, conn)):
            threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            cut, self._open = self._open, []
        for s in cut:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
                s.close()

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            held, self._held = self._held, []
        for conn in held:
            self._forward(conn)

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        self.pause()


@pytest.fixture
def small_cluster(tmp_path: Path) -> Iterator[Cluster]:
    small = Cluster(tmp_path / "data")
    small.start("--watch-history", "20", "--store", "memory")
    yield small
    small.stop()


def _client_via(kubeconfig: Path, port: int) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    # The loader's refresh hook would copy the kubeconfig's server back over ``host`` on every request.
    configuration.refresh_api_key_hook = None
    configuration.host = f"https://127.0.0.1:{port}"
    return client.ApiClient(configuration)


def test_informer_relists_after_its_watch_expires(small_cluster: Cluster) -> None:
    direct = small_cluster.api_client()
    core = client.CoreV1Api(direct)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="watched")))
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="noise")))
    core.create_namespaced_config_map("watched", _cm("keep", v="1"))
    core.create_namespaced_config_map("watched", _cm("drop", v="1"))
    port = int(small_cluster.url.rsplit(":", 1)[1])
    relay = Relay(("127.0.0.1", port))
    relayed = _client_via(small_cluster.kubeconfig, relay.port)
    informer = SharedInformer(client.CoreV1Api(relayed).list_namespaced_config_map, namespace="watched")
    recorder = Recorder(informer)
    informer.start()
    try:
        _eventually(lambda: recorder.has(ADDED, "keep") and recorder.has(ADDED, "drop"), "the initial list")
        time.sleep(0.3)  # the watch is open
        relay.pause()
        _eventually(lambda: relay.held() > 0, "the informer to reconnect")
        # Changes the informer misses while cut off, then enough others that its revision is forgotten.
        core.delete_namespaced_config_map("drop", "watched")
        core.patch_namespaced_config_map("keep", "watched", {"data": {"v": "2"}})
        core.create_namespaced_config_map("watched", _cm("new", v="1"))
        core.create_namespaced_config_map("noise", _cm("n"))
        for i in range(30):
            core.patch_namespaced_config_map("n", "noise", {"data": {"i": str(i)}})
        relay.resume()
        _eventually(lambda: _cached(informer) == {"keep": {"v": "2"}, "new": {"v": "1"}},
                    "the informer to relist and catch up")
        expired = [e for e in recorder.errors if isinstance(e, ApiException)]
        assert [e.status for e in expired] == [410], recorder.errors
        after = recorder.snapshot()[2:]
        assert sorted(after) == sorted([(DELETED, "drop", {"v": "1"}), (MODIFIED, "keep", {"v": "2"}),
                                        (ADDED, "new", {"v": "1"})])
        # And it keeps watching from the relisted revision.
        core.create_namespaced_config_map("watched", _cm("later"))
        _eventually(lambda: recorder.has(ADDED, "later"), "an event after the relist")
    finally:
        relay.resume()  # a held reconnection must go through, or stop() would wait on it forever
        informer.stop()
        relay.close()
        relayed.close()
        direct.close()
