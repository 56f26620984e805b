"""kill -9 the server during concurrent writes: after a restart every acknowledged write is there and
resourceVersions keep increasing."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from .cluster import Cluster


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    c = Cluster(tmp_path / "data")
    c.start()
    acked: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        with c.api_client() as api:
            core = client.CoreV1Api(api)
            i = 0
            while not stop.is_set():
                name = f"w{n}-{i}"
                try:
                    created = core.create_namespaced_config_map(
                        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"i": str(i)}),
                        _request_timeout=5)
                except Exception:
                    return  # the server died under us: this write was never acknowledged
                with lock:
                    acked[name] = int(created.metadata.resource_version)
                i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(acked) < 200:
        time.sleep(0.05)
    c.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) >= 50, "too few writes were acknowledged before the kill to prove anything"

    c.start()
    try:
        with c.api_client() as api:
            core = client.CoreV1Api(api)
            stored = {cm.metadata.name: cm for cm in core.list_namespaced_config_map("default").items}
            missing = sorted(set(acked) - set(stored))
            assert not missing, f"acknowledged writes lost: {missing[:10]}"
            for name, rv in acked.items():
                assert int(stored[name].metadata.resource_version) == rv
            after = core.create_namespaced_config_map(
                "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="after-restart")))
            assert int(after.metadata.resource_version) > max(acked.values())
            try:
                core.create_namespaced_config_map(
                    "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="after-restart")))
            except ApiException as err:
                assert err.status == 409
    finally:
        c.stop()
