"""The official Python client (kubernetes 37, pydantic models) against `nanokube up`."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from kubernetes import client, dynamic, utils, watch
from kubernetes.client.rest import ApiException

from .cluster import Cluster


@pytest.fixture
def api(cluster: Cluster):  # type: ignore[no-untyped-def]
    with cluster.api_client() as api_client:
        yield api_client


def _meta(name: str, **labels: str) -> client.V1ObjectMeta:
    return client.V1ObjectMeta(name=name, labels=labels or None)


def _pod_template(app: str) -> client.V1PodTemplateSpec:
    return client.V1PodTemplateSpec(
        metadata=_meta("", app=app),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")]))


def test_crud_of_every_kind(api, namespace: str) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    batch = client.BatchV1Api(api)
    ns = namespace
    selector = client.V1LabelSelector(match_labels={"app": "x"})
    template = _pod_template("x")
    template.metadata.name = None
    creations = [
        (core.create_namespaced_config_map, core.read_namespaced_config_map, core.list_namespaced_config_map,
         core.delete_namespaced_config_map, client.V1ConfigMap(metadata=_meta("cm"), data={"a": "b"})),
        (core.create_namespaced_secret, core.read_namespaced_secret, core.list_namespaced_secret,
         core.delete_namespaced_secret, client.V1Secret(metadata=_meta("sec"), string_data={"a": "b"})),
        (core.create_namespaced_pod, core.read_namespaced_pod, core.list_namespaced_pod,
         core.delete_namespaced_pod, client.V1Pod(metadata=_meta("pod"), spec=template.spec)),
        (core.create_namespaced_service, core.read_namespaced_service, core.list_namespaced_service,
         core.delete_namespaced_service,
         client.V1Service(metadata=_meta("svc"), spec=client.V1ServiceSpec(
             selector={"app": "x"}, ports=[client.V1ServicePort(port=80)]))),
        (core.create_namespaced_service_account, core.read_namespaced_service_account,
         core.list_namespaced_service_account, core.delete_namespaced_service_account,
         client.V1ServiceAccount(metadata=_meta("sa"))),
        (core.create_namespaced_persistent_volume_claim, core.read_namespaced_persistent_volume_claim,
         core.list_namespaced_persistent_volume_claim, core.delete_namespaced_persistent_volume_claim,
         client.V1PersistentVolumeClaim(metadata=_meta("pvc"), spec=client.V1PersistentVolumeClaimSpec(
             access_modes=["ReadWriteOnce"],
             resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"})))),
        (apps.create_namespaced_deployment, apps.read_namespaced_deployment, apps.list_namespaced_deployment,
         apps.delete_namespaced_deployment,
         client.V1Deployment(metadata=_meta("dep"), spec=client.V1DeploymentSpec(selector=selector,
                                                                                 template=template))),
        (apps.create_namespaced_stateful_set, apps.read_namespaced_stateful_set, apps.list_namespaced_stateful_set,
         apps.delete_namespaced_stateful_set,
         client.V1StatefulSet(metadata=_meta("sts"), spec=client.V1StatefulSetSpec(
             selector=selector, template=template, service_name="sts"))),
        (apps.create_namespaced_daemon_set, apps.read_namespaced_daemon_set, apps.list_namespaced_daemon_set,
         apps.delete_namespaced_daemon_set,
         client.V1DaemonSet(metadata=_meta("ds"), spec=client.V1DaemonSetSpec(selector=selector,
                                                                             template=template))),
        (batch.create_namespaced_cron_job, batch.read_namespaced_cron_job, batch.list_namespaced_cron_job,
         batch.delete_namespaced_cron_job,
         client.V1CronJob(metadata=_meta("cj"), spec=client.V1CronJobSpec(
             schedule="*/5 * * * *", job_template=client.V1JobTemplateSpec(spec=client.V1JobSpec(
                 template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
                     restart_policy="Never", containers=[client.V1Container(name="c", image="busybox")]))))))),
    ]
    for create, read, list_, delete, body in creations:
        created = create(ns, body)
        assert created.metadata.uid and created.metadata.resource_version
        name = created.metadata.name
        assert read(name, ns).metadata.uid == created.metadata.uid
        assert name in [i.metadata.name for i in list_(ns).items]
        delete(name, ns)
    # Cluster-scoped kinds.
    storage = client.StorageV1Api(api)
    sc = storage.create_storage_class(client.V1StorageClass(metadata=_meta(f"sc-{ns}"), provisioner="x.io/p"))
    assert sc.reclaim_policy == "Delete"
    storage.delete_storage_class(sc.metadata.name)


def test_update_conflict_and_status(api, namespace: str) -> None:  # type: ignore[no-untyped-def]
    apps = client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    dep = client.V1Deployment(metadata=_meta("d"), spec=client.V1DeploymentSpec(
        selector=client.V1LabelSelector(match_labels={"app": "d"}), template=_pod_template("d")))
    created = apps.create_namespaced_deployment(namespace, dep)
    assert created.spec.replicas == 1 and created.spec.strategy.type == "RollingUpdate"
    # The Deployment controller writes too: read-modify-replace until this write lands.
    for _ in range(20):
        current = apps.read_namespaced_deployment("d", namespace)
        generation = current.metadata.generation
        current.spec.replicas = 3
        try:
            updated = apps.replace_namespaced_deployment("d", namespace, current)
            break
        except ApiException as err:
            assert err.status == 409
    assert updated.metadata.generation == generation + 1
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_deployment("d", namespace, current)  # stale resourceVersion
    assert err.value.status == 409
    scaled = apps.patch_namespaced_deployment_scale("d", namespace, {"spec": {"replicas": 4}})
    assert scaled.spec.replicas == 4
    # A status write cannot change the spec, nor a spec write the status (a Service: no controller writes it).
    core.create_namespaced_service(namespace, client.V1Service(metadata=_meta("s"), spec=client.V1ServiceSpec(
        ports=[client.V1ServicePort(port=80)])))
    ingress = {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}, "spec": {"type": "NodePort"}}
    status = core.patch_namespaced_service_status("s", namespace, ingress)
    assert status.status.load_balancer.ingress[0].ip == "192.0.2.1"
    assert status.spec.type == "ClusterIP"
    again = core.patch_namespaced_service("s", namespace, {"status": {"loadBalancer": {"ingress": None}}})
    assert again.status.load_balancer.ingress[0].ip == "192.0.2.1"

def test_watch_resumes_from_a_version(api, namespace: str) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    listed = core.list_namespaced_config_map(namespace)
    start_rv = listed.metadata.resource_version

    def writer() -> None:
        time.sleep(0.3)
        for i in range(3):
            core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=_meta(f"w{i}")))

    threading.Thread(target=writer).start()
    seen = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, namespace, resource_version=start_rv,
                          timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "w0"), ("ADDED", "w1"), ("ADDED", "w2")]


def test_watch_from_a_forgotten_version_is_410(tmp_path: Path) -> None:
    small = Cluster(tmp_path / "data")
    small.start("--watch-history", "20")
    try:
        with small.api_client() as api:
            core = client.CoreV1Api(api)
            first = core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=_meta("old")))
            for i in range(30):
                core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=_meta(f"n{i}")))
            with pytest.raises(ApiException) as err:
                for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                              resource_version=first.metadata.resource_version, timeout_seconds=2):
                    pass
            assert err.value.status == 410
            assert "too old resource version" in str(err.value.reason)
    finally:
        small.stop()


def test_send_initial_events_and_informer_style_list_watch(api, namespace: str) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=_meta("first")))
    names = []
    for event in watch.Watch().stream(core.list_namespaced_config_map, namespace, send_initial_events=True,
                                      resource_version_match="NotOlderThan", allow_watch_bookmarks=True,
                                      timeout_seconds=2):
        if event["type"] == "ADDED" and event["object"].metadata.name != "kube-root-ca.crt":
            names.append(event["object"].metadata.name)
    assert names == ["first"]  # besides the root CA ConfigMap every namespace holds


def test_dynamic_client_and_create_from_yaml(api, namespace: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "m.yaml"
    manifest.write_text(f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: from-yaml, namespace: {namespace}}}
data: {{x: "1"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: from-yaml, namespace: {namespace}}}
spec:
  selector: {{matchLabels: {{app: y}}}}
  template:
    metadata: {{labels: {{app: y}}}}
    spec: {{containers: [{{name: c, image: busybox}}]}}
""")
    utils.create_from_yaml(api, str(manifest))
    dyn = dynamic.DynamicClient(api)
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    got = deployments.get(namespace=namespace, name="from-yaml")
    assert got.spec.template.spec.containers[0].name == "c"
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    assert cms.get(namespace=namespace, name="from-yaml").data.x == "1"


def test_delete_cascades(api, namespace: str) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=_meta("owner")))
    ref = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid,
                                  block_owner_deletion=True)
    for i in range(2):
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=f"dep{i}", owner_references=[ref])))
    core.delete_namespaced_config_map("owner", namespace,
                                      body=client.V1DeleteOptions(propagation_policy="Foreground"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        names = {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}
        if not names & {"owner", "dep0", "dep1"}:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"foreground cascade did not finish: {names}")
