"""Defaults produce the shapes a real kube-apiserver returns (kubectl get -o yaml of the docs' examples)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nanokube.api import defaults

JSON = dict[str, Any]


def nginx_deployment() -> JSON:
    """The Deployment of the Kubernetes docs ("Creating a Deployment")."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx-deployment", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]},
            },
        },
    }


NGINX_CONTAINER = {
    "name": "nginx", "image": "nginx:1.14.2", "imagePullPolicy": "IfNotPresent",
    "ports": [{"containerPort": 80, "protocol": "TCP"}], "resources": {},
    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
}
TEMPLATE_SPEC_DEFAULTS = {
    "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
    "securityContext": {}, "terminationGracePeriodSeconds": 30,
}


def applied(group: str, kind: str, obj: JSON) -> JSON:
    defaults.apply(group, kind, obj)
    return obj


def test_docs_nginx_deployment_matches_kube() -> None:
    spec = applied("apps", "Deployment", nginx_deployment())["spec"]
    assert spec == {
        "progressDeadlineSeconds": 600,
        "replicas": 3,
        "revisionHistoryLimit": 10,
        "selector": {"matchLabels": {"app": "nginx"}},
        "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [NGINX_CONTAINER], **TEMPLATE_SPEC_DEFAULTS},
        },
    }


def test_docs_pod_matches_kube_including_admission_defaults() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx", "namespace": "default"},
           "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}}
    defaults.apply("", "Pod", pod)
    defaults.prepare_create("", "Pod", pod)
    assert pod["spec"] == {
        "containers": [NGINX_CONTAINER],
        **TEMPLATE_SPEC_DEFAULTS,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "serviceAccount": "default",
        "serviceAccountName": "default",
        "tolerations": [
            {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists",
             "tolerationSeconds": 300},
            {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists",
             "tolerationSeconds": 300},
        ],
    }
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


@pytest.mark.parametrize(("group", "kind", "obj"), [
    ("apps", "Deployment", nginx_deployment()),
    ("", "Pod", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    ("batch", "Job", {"metadata": {"name": "j", "uid": "u-1"},
                      "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
    ("", "Service", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}),
    ("", "Namespace", {"metadata": {"name": "n"}}),
])
def test_apply_is_idempotent(group: str, kind: str, obj: JSON) -> None:
    once = applied(group, kind, copy.deepcopy(obj))
    twice = applied(group, kind, copy.deepcopy(once))
    assert twice == once and once != obj


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("docker.io/library/nginx", "Always"),
    ("nginx:1.25", "IfNotPresent"), ("localhost:5000/app", "Always"), ("localhost:5000/app:v1", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"), ("nginx:latest@sha256:" + "a" * 64, "Always"),
])
def test_image_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    pod = applied("", "Pod", {"spec": {"containers": [{"name": "c", "image": image}]}})
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_client_values_are_never_overwritten() -> None:
    dep = nginx_deployment()
    dep["spec"]["strategy"] = {"type": "Recreate"}
    dep["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    spec = applied("apps", "Deployment", dep)["spec"]
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_pod_requests_default_to_limits_and_quantities_are_canonical() -> None:
    pod = applied("", "Pod", {"spec": {"containers": [{"name": "c", "image": "x", "resources": {
        "limits": {"cpu": "1000m", "memory": "1024Mi"}, "requests": {"cpu": "0.0001"}}}]}})
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1m", "memory": "1Gi"}}


def test_template_does_not_get_pod_only_defaults() -> None:
    dep = nginx_deployment()
    dep["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    tmpl = applied("apps", "Deployment", dep)["spec"]["template"]["spec"]
    assert tmpl["containers"][0]["resources"] == {"limits": {"cpu": "1"}}
    for field in ("enableServiceLinks", "serviceAccountName", "tolerations", "priority"):
        assert field not in tmpl


def test_probes_env_and_volumes() -> None:
    pod = applied("", "Pod", {"spec": {
        "containers": [{
            "name": "c", "image": "x",
            "livenessProbe": {"httpGet": {"port": 8080}},
            "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5},
            "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}},
        }],
        "volumes": [{"name": "cache"}, {"name": "cfg", "configMap": {"name": "cfg"}},
                    {"name": "sec", "secret": {"secretName": "s"}}, {"name": "host", "hostPath": {"path": "/x"}},
                    {"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}],
    }})
    ctr = pod["spec"]["containers"][0]
    assert ctr["livenessProbe"] == {"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                    "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert ctr["readinessProbe"]["periodSeconds"] == 5
    assert ctr["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName", "apiVersion": "v1"}
    assert ctr["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/stop", "scheme": "HTTP"}
    assert pod["spec"]["volumes"] == [
        {"name": "cache", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 420}},
        {"name": "host", "hostPath": {"path": "/x", "type": ""}},
        {"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}],
                                      "defaultMode": 420}},
    ]


def test_pod_admission_defaults_respect_what_is_there() -> None:
    pod = applied("", "Pod", {"spec": {
        "containers": [{"name": "c", "image": "x"}], "serviceAccount": "legacy",
        "priorityClassName": "system-node-critical",
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]}})
    spec = pod["spec"]
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "legacy"
    assert spec["priority"] == 2000001000
    assert [t["key"] for t in spec["tolerations"]] == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    tolerate_all = applied("", "Pod", {"spec": {"containers": [{"name": "c", "image": "x"}],
                                                "tolerations": [{"operator": "Exists"}]}})
    assert tolerate_all["spec"]["tolerations"] == [{"operator": "Exists"}]


def test_host_network_pods_get_host_ports() -> None:
    pod = applied("", "Pod", {"spec": {"hostNetwork": True, "containers": [
        {"name": "c", "image": "x", "ports": [{"containerPort": 53}]}]}})
    assert pod["spec"]["containers"][0]["ports"] == [{"containerPort": 53, "hostPort": 53, "protocol": "TCP"}]


def test_job_defaults_selector_and_labels_from_uid() -> None:
    job = applied("batch", "Job", {"metadata": {"name": "pi", "namespace": "default", "uid": "c9948307"},
                                   "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl"}],
                                                                  "restartPolicy": "Never"}}}})
    labels = {"batch.kubernetes.io/controller-uid": "c9948307", "batch.kubernetes.io/job-name": "pi",
              "controller-uid": "c9948307", "job-name": "pi"}
    spec = job["spec"]
    assert {k: v for k, v in spec.items() if k != "template"} == {
        "backoffLimit": 6, "completionMode": "NonIndexed", "completions": 1, "manualSelector": False,
        "parallelism": 1, "podReplacementPolicy": "TerminatingOrFailed", "suspend": False,
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "c9948307"}},
    }
    assert spec["template"]["metadata"]["labels"] == labels
    assert job["metadata"]["labels"] == labels
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_job_completions_parallelism_and_manual_selector() -> None:
    job = applied("batch", "Job", {"metadata": {"name": "j", "uid": "u"},
                                   "spec": {"parallelism": 3, "manualSelector": True,
                                            "selector": {"matchLabels": {"a": "b"}},
                                            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {}}}})
    spec = job["spec"]
    assert "completions" not in spec and spec["parallelism"] == 3
    assert spec["selector"] == {"matchLabels": {"a": "b"}}
    assert spec["template"]["metadata"]["labels"] == {"a": "b"}
    with_policy = applied("batch", "Job", {"metadata": {"name": "j"}, "spec": {
        "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}}})
    assert with_policy["spec"]["podReplacementPolicy"] == "Failed"
    assert with_policy["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"
    assert "selector" not in with_policy["spec"]  # no uid yet: nothing to generate from


def test_cronjob_defaults_leave_the_job_spec_alone() -> None:
    cj = applied("batch", "CronJob", {"spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {
        "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}}})
    spec = cj["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
            spec["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)
    job_spec = spec["jobTemplate"]["spec"]
    assert set(job_spec) == {"template"}
    assert job_spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"


def test_statefulset_and_daemonset_defaults() -> None:
    sts = applied("apps", "StatefulSet", {"spec": {
        "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}})
    spec = sts["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady" and spec["replicas"] == 1
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["volumeClaimTemplates"][0]["spec"]["volumeMode"] == "Filesystem"
    assert spec["volumeClaimTemplates"][0]["status"] == {"phase": "Pending"}
    on_delete = applied("apps", "StatefulSet", {"spec": {"updateStrategy": {"type": "OnDelete"}}})
    assert on_delete["spec"]["updateStrategy"] == {"type": "OnDelete"}
    ds = applied("apps", "DaemonSet", {"spec": {"template": {"spec": {}}}})
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds["spec"]["revisionHistoryLimit"] == 10
    assert applied("apps", "ReplicaSet", {"spec": {}})["spec"]["replicas"] == 1


def test_replication_controller_takes_selector_and_labels_from_template() -> None:
    rc = applied("", "ReplicationController", {"metadata": {"name": "rc"}, "spec": {
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    assert rc["spec"]["selector"] == {"app": "web"} and rc["metadata"]["labels"] == {"app": "web"}
    assert rc["spec"]["replicas"] == 1


@pytest.mark.parametrize(("spec", "expected"), [
    ({"ports": [{"port": 80}], "selector": {"app": "web"}},
     {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
      "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"],
      "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "selector": {"app": "web"}}),
    ({"type": "NodePort", "ports": [{"port": 80, "targetPort": "http"}]},
     {"type": "NodePort", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
      "externalTrafficPolicy": "Cluster", "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"],
      "ports": [{"port": 80, "protocol": "TCP", "targetPort": "http"}]}),
    ({"type": "LoadBalancer", "ports": [{"port": 443, "protocol": "UDP"}]},
     {"type": "LoadBalancer", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
      "externalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": True, "ipFamilyPolicy": "SingleStack",
      "ipFamilies": ["IPv4"], "ports": [{"port": 443, "protocol": "UDP", "targetPort": 443}]}),
    ({"type": "ExternalName", "externalName": "example.com"},
     {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"}),
    ({"clusterIP": "None", "ports": [{"port": 80}]},
     {"clusterIP": "None", "clusterIPs": ["None"], "type": "ClusterIP", "sessionAffinity": "None",
      "internalTrafficPolicy": "Cluster", "ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4"],
      "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}),
])
def test_service_defaults(spec: JSON, expected: JSON) -> None:
    assert applied("", "Service", {"spec": spec})["spec"] == expected


def test_client_ip_affinity_gets_its_timeout() -> None:
    svc = applied("", "Service", {"spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 1}]}})
    assert svc["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_namespace_defaults_and_create() -> None:
    ns = applied("", "Namespace", {"metadata": {"name": "team-a", "labels": {"x": "y"}}})
    assert ns["metadata"]["labels"] == {"x": "y", "kubernetes.io/metadata.name": "team-a"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]} and ns["status"] == {"phase": "Active"}
    finalized = applied("", "Namespace", {"metadata": {"name": "n"}, "spec": {"finalizers": []},
                                          "status": {"phase": "Terminating"}})
    assert finalized["spec"]["finalizers"] == [] and finalized["status"]["phase"] == "Terminating"
    created = {"metadata": {"name": "n"}, "spec": {"finalizers": ["example.com/x"]}, "status": {"phase": "Bogus"}}
    defaults.prepare_create("", "Namespace", created)
    assert created["spec"]["finalizers"] == ["example.com/x", "kubernetes"]
    assert created["status"] == {"phase": "Active"}


def test_secret_type_and_string_data() -> None:
    secret = applied("", "Secret", {"data": {"a": "eA=="}, "stringData": {"b": "hello", "a": "y"}})
    assert secret == {"type": "Opaque", "data": {"a": "eQ==", "b": "aGVsbG8="}}


def test_storage_defaults() -> None:
    pvc = applied("", "PersistentVolumeClaim", {"spec": {"resources": {"requests": {"storage": "1024Mi"}}}})
    assert pvc["spec"] == {"resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"}
    assert pvc["status"] == {"phase": "Pending"}
    pv = applied("", "PersistentVolume", {"spec": {"capacity": {"storage": "1Gi"}}})
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain" and pv["spec"]["volumeMode"] == "Filesystem"
    assert pv["status"] == {"phase": "Pending"}
    sc = applied("storage.k8s.io", "StorageClass", {"provisioner": "x"})
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")


def test_misc_group_defaults() -> None:
    pc = applied("scheduling.k8s.io", "PriorityClass", {"value": 10})
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"
    rb = applied("rbac.authorization.k8s.io", "RoleBinding", {
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "User", "name": "alice"}]})
    assert rb["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert [s["apiGroup"] for s in rb["subjects"]] == ["", "rbac.authorization.k8s.io"]
    eps = applied("discovery.k8s.io", "EndpointSlice", {"ports": [{"port": 80}]})
    assert eps["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]
    ep = applied("", "Endpoints", {"subsets": [{"ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    node = applied("", "Node", {"status": {"capacity": {"cpu": "4", "memory": "8Gi"}}})
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi"}


def test_limit_range_container_defaults() -> None:
    lr = applied("", "LimitRange", {"spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}},
        {"type": "Pod", "max": {"cpu": "4"}}]}})
    container, pod = lr["spec"]["limits"]
    assert container["default"] == {"cpu": "2"}
    assert container["defaultRequest"] == {"cpu": "2", "memory": "64Mi"}
    assert "default" not in pod


def test_unknown_kinds_are_left_alone() -> None:
    obj = {"spec": {"x": 1}}
    assert applied("example.com", "Widget", copy.deepcopy(obj)) == obj


@pytest.mark.parametrize(("containers", "qos"), [
    ([{"resources": {}}], "BestEffort"),
    ([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}],
     "Guaranteed"),
    ([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}}],
     "Burstable"),
    ([{"resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}}], "Burstable"),
    ([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}], "Guaranteed"),  # requests default to limits
    ([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}, {"resources": {}}], "Burstable"),
    ([{"resources": {"requests": {"ephemeral-storage": "1Gi"}}}], "BestEffort"),
])
def test_prepare_create_qos_classes(containers: list[JSON], qos: str) -> None:
    pod = {"spec": {"containers": containers}, "status": {"phase": "Running"}}
    defaults.prepare_create("", "Pod", pod)
    assert pod["status"] == {"phase": "Pending", "qosClass": qos}


def test_prepare_create_initial_statuses_carry_required_fields() -> None:
    cases = {
        ("apps", "Deployment"): {}, ("apps", "ReplicaSet"): {"replicas": 0},
        ("apps", "DaemonSet"): {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                                "numberReady": 0},
        ("batch", "Job"): {}, ("", "Service"): {"loadBalancer": {}},
    }
    for (group, kind), status in cases.items():
        obj: JSON = {"status": {"replicas": 99}}
        defaults.prepare_create(group, kind, obj)
        assert obj["status"] == status, kind
    cm: JSON = {"data": {"a": "b"}}
    defaults.prepare_create("", "ConfigMap", cm)
    assert cm == {"data": {"a": "b"}}
