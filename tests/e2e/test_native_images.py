"""Images on the real node: one built here from Debian's busybox-static, loaded with ``nanokube image import``,
and the same kind of image pulled from a local Debian ``docker-registry``; both run busybox ``httpd`` that
answers at the Pod's IP. A tag the registry does not have gives ErrImagePull, then ImagePullBackOff.

Runs `nanokube up --node native` as test_native_node does (root, runc, CNI, busybox-static, docker-registry;
fails, not skips, without them)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from kubelet.images_helpers import (  # tests/kubelet, beside this package on sys.path
    BUSYBOX_CONFIG,
    Built,
    Entry,
    build_image,
    busybox_entries,
    local_registry,
    push,
    tar_entries,
    write_docker_archive,
)

from .cluster import Cluster, eventually, native_cluster, unique

HTTPD_POD = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: %(image)s
    imagePullPolicy: %(policy)s
    command: [httpd, -f, -p, "8080", -h, /var/www]
"""


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with native_cluster(tmp_path_factory.mktemp("native-images")) as c:
        yield c


_wait = partial(eventually, timeout=60.0, interval=0.3)


def _busybox(page: str) -> Built:
    """A two-layer busybox image whose web root serves ``page`` as index.html."""
    extra = [Entry("var", "dir"), Entry("var/www", "dir"), Entry("var/www/index.html", "file", page)]
    return build_image([tar_entries(busybox_entries()), tar_entries(extra)], docker=True,
                       config=dict(BUSYBOX_CONFIG))


def _pod(c: Cluster, name: str) -> dict[str, Any]:
    return json.loads(c.kubectl("get", "pod", name, "-o", "json").stdout)


def _serves(c: Cluster, name: str, page: str) -> None:
    c.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=60s")
    ip = _pod(c, name)["status"]["podIP"]

    def fetch() -> bytes:
        try:
            return urllib.request.urlopen(f"http://{ip}:8080/index.html", timeout=5).read()
        except OSError:
            return b""

    assert _wait(fetch, f"busybox httpd at {ip}:8080", timeout=20).decode() == page


def _events(c: Cluster, name: str) -> list[tuple[str, str]]:
    items = json.loads(c.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}",
                                 "-o", "json").stdout)["items"]
    return [(e["reason"], e.get("message", "")) for e in items]


def _events_with(c: Cluster, name: str, reasons: set[str]) -> list[tuple[str, str]]:
    """The Pod's events once all of ``reasons`` are among them, else []."""
    events = _events(c, name)
    return events if reasons <= {r for r, _ in events} else []


def test_an_imported_busybox_image_serves_at_its_pod_ip(node_cluster: Cluster, tmp_path: Path) -> None:
    c = node_cluster
    page = f"imported {unique('page')}\n"
    archive = tmp_path / "busybox.tar"
    write_docker_archive(archive, _busybox(page), ["nanokube.test/busybox:e2e"])
    loaded = subprocess.run([sys.executable, "-m", "nanokube.cmd.main", "image", "import", "--data-dir",
                             str(c.data_dir), str(archive)], capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert "Loaded image: nanokube.test/busybox:e2e" in loaded.stdout
    c.kubectl("apply", "-f", "-", input=HTTPD_POD % {"name": "imported", "image": "nanokube.test/busybox:e2e",
                                                      "policy": "Never"})
    _serves(c, "imported", page)
    status = _pod(c, "imported")["status"]["containerStatuses"][0]
    assert status["image"] == "nanokube.test/busybox:e2e" and status["imageID"].startswith("sha256:")

    def listed() -> list[dict[str, Any]]:  # the Node lists it in status.images by its next heartbeat
        node = json.loads(c.kubectl("get", "nodes", "-o", "json").stdout)["items"][0]
        return [i for i in node["status"].get("images") or [] if "nanokube.test/busybox:e2e" in i["names"]]

    assert _wait(listed, "the imported image in the Node's status.images")[0]["sizeBytes"] > 0
    c.kubectl("delete", "pod", "imported", "--timeout=60s")


def test_an_image_from_a_local_registry_is_pulled_and_runs(node_cluster: Cluster, tmp_path: Path) -> None:
    c = node_cluster
    page = f"pulled {unique('page')}\n"
    with local_registry(tmp_path) as registry:
        asyncio.run(push(registry, "e2e/busybox", "v1", _busybox(page)))
        image = f"{registry}/e2e/busybox:v1"
        c.kubectl("apply", "-f", "-", input=HTTPD_POD % {"name": "pulled", "image": image, "policy": "Always"})
        _serves(c, "pulled", page)
        events = _wait(partial(_events_with, c, "pulled", {"Pulling", "Pulled", "Started"}),
                       "Pulling, Pulled and Started events")
        assert any(r == "Pulling" and image in m for r, m in events), events
        assert any(r == "Pulled" and image in m for r, m in events), events

        missing = f"{registry}/e2e/busybox:no-such-tag"
        c.kubectl("apply", "-f", "-", input=HTTPD_POD % {"name": "missing", "image": missing,
                                                          "policy": "IfNotPresent"})

        def backing_off() -> dict[str, Any]:
            statuses = _pod(c, "missing")["status"].get("containerStatuses") or []
            waiting: dict[str, Any] = statuses[0]["state"].get("waiting") or {} if statuses else {}
            return waiting if waiting.get("reason") == "ImagePullBackOff" else {}

        waiting = _wait(backing_off, "the missing tag to fail to pull and back off")
        assert waiting["message"] == f'Back-off pulling image "{missing}"'
        events = _events(c, "missing")
        assert any(r == "Failed" and m.startswith(f'Failed to pull image "{missing}"') and "no-such-tag" in m
                   for r, m in events), events
        assert ("Failed", "Error: ErrImagePull") in events and ("BackOff", waiting["message"]) in events, events
        assert ("Failed", "Error: ImagePullBackOff") in events, events
        assert _pod(c, "missing")["status"]["phase"] == "Pending"
        c.kubectl("delete", "pod", "pulled", "missing", "--timeout=60s")


CLIENT_POD = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: nanokube.test/busybox:dns
    imagePullPolicy: Never
    # busybox's nslookup tries every search domain and fails if any misses: its output is checked, wget's status
    command: [sh, -c, 'nslookup %(service)s; wget -q -O- http://%(service)s/index.html']
"""
SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: %(name)s}
spec:
  selector: {app: %(name)s}
  ports: [{port: 80, targetPort: 8080}]
"""


def test_a_busybox_pod_finds_a_service_by_name(node_cluster: Cluster, tmp_path: Path) -> None:
    """Service and DNS from a busybox image: its own resolver (nslookup) and wget go through the Pod's
    resolv.conf to the cluster DNS, and wget reaches the Service's Pod through its ClusterIP."""
    c = node_cluster
    page = f"by name {unique('page')}\n"
    archive = tmp_path / "busybox.tar"
    write_docker_archive(archive, _busybox(page), ["nanokube.test/busybox:dns"])
    loaded = subprocess.run([sys.executable, "-m", "nanokube.cmd.main", "image", "import", "--data-dir",
                             str(c.data_dir), str(archive)], capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    server = HTTPD_POD % {"name": "bb-web", "image": "nanokube.test/busybox:dns", "policy": "Never"}
    server = server.replace("metadata: {name: bb-web}", "metadata: {name: bb-web, labels: {app: bb-web}}")
    c.kubectl("apply", "-f", "-", input=server)
    c.kubectl("apply", "-f", "-", input=SERVICE % {"name": "bb-web"})
    _serves(c, "bb-web", page)

    def lookup() -> str:
        c.kubectl("delete", "pod", "bb-client", "--ignore-not-found", "--timeout=60s")
        c.kubectl("apply", "-f", "-", input=CLIENT_POD % {"name": "bb-client", "service": "bb-web"})
        phase = _wait(lambda: (_pod(c, "bb-client").get("status") or {}).get("phase") in ("Succeeded", "Failed")
                      and _pod(c, "bb-client")["status"]["phase"], "the busybox client to finish")
        logs = c.kubectl("logs", "bb-client").stdout
        return logs if phase == "Succeeded" else ""

    logs = _wait(lookup, "a busybox Pod to resolve and fetch the Service by name", timeout=90)
    assert "bb-web.default.svc.cluster.local" in logs and page in logs, logs
    c.kubectl("delete", "pod", "bb-client", "bb-web", "--timeout=60s")
    c.kubectl("delete", "service", "bb-web")
