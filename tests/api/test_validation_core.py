"""Core kinds: Service, ConfigMap, Secret, Namespace, Node, PVC/PV, Endpoints, Event, LimitRange, ResourceQuota."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from validation_helpers import JSON, created, meta, only, service, texts, updated

from nanokube.api import defaults


def core(kind: str, obj: JSON) -> list[str]:
    return texts(created("", kind, obj))


# -- Service -------------------------------------------------------------------------------------------------
def test_service_valid_shapes() -> None:
    assert core("Service", service()) == []
    assert core("Service", service(clusterIP="None", ports=[])) == []
    assert core("Service", service(type="ExternalName", externalName="db.example.com.", ports=[])) == []
    assert core("Service", service(type="NodePort", ports=[{"port": 80, "nodePort": 30080}])) == []


def test_service_ports_required_unless_headless_or_external_name() -> None:
    assert core("Service", service(ports=[])) == ["spec.ports: Required value"]


def test_service_port_rules() -> None:
    ports = [{"port": 0, "name": "a"}, {"port": 80, "protocol": "ICMP", "name": "a"}, {"port": 81},
             {"port": 82, "name": "b", "targetPort": "Http_Port"}]
    assert core("Service", service(ports=ports)) == [
        "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        'spec.ports[1].name: Duplicate value: "a"',
        'spec.ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        "spec.ports[2].name: Required value",
        'spec.ports[3].targetPort: Invalid value: "Http_Port": must contain only alpha-numeric characters (a-z, 0-9), '
        "and hyphens (-)",
    ]


def test_service_duplicate_ports() -> None:
    ports = [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]
    assert core("Service", service(ports=ports)) == [
        'spec.ports[1]: Duplicate value: {"Name":"","Protocol":"TCP","AppProtocol":null,"Port":80,"TargetPort":0,'
        '"NodePort":0}']


def test_service_type_and_node_ports() -> None:
    assert core("Service", service(type="Internal")) == [
        'spec.type: Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", '
        '"NodePort"']
    assert core("Service", service(type="NodePort", ports=[{"port": 80, "nodePort": 80}])) == [
        "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid "
        "ports is 30000-32767"]
    assert core("Service", service(ports=[{"port": 80, "nodePort": 30001}])) == [
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
    assert core("Service", service(type="NodePort", clusterIP="None")) == [
        "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"]
    assert core("Service", service(type="ExternalName", ports=[])) == ["spec.externalName: Required value"]


def test_service_session_affinity_and_selector() -> None:
    assert core("Service", service(sessionAffinity="Sticky")) == [
        'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"']
    assert core("Service", service(selector={"app": "web/x"}))[0].startswith(
        'spec.selector: Invalid value: "web/x": a valid label must be an empty string')


def test_service_cluster_ip_is_immutable() -> None:
    old = service(clusterIP="10.43.0.10")
    defaults.apply("", "Service", old)
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = new["spec"]["clusterIPs"][0] = "10.43.0.11"
    assert texts(updated("", "Service", new, old)) == [
        'spec.clusterIPs[0]: Invalid value: ["10.43.0.11"]: may not change once set']
    new = copy.deepcopy(old)
    new["spec"]["ports"][0]["port"] = 8080
    assert updated("", "Service", new, old) == []


def test_service_cluster_ips_must_agree() -> None:
    assert core("Service", service(clusterIP="10.43.0.10", clusterIPs=["10.43.0.12"])) == [
        'spec.clusterIPs: Invalid value: ["10.43.0.12"]: first value must match `clusterIP`']
    assert core("Service", service(clusterIP="10.43.0.300"))[0] == (
        'spec.clusterIPs[0]: Invalid value: "10.43.0.300": must be a valid IP address, (e.g. 10.9.8.7 or '
        "2001:db8::ffff)")


# -- ConfigMap, Secret ---------------------------------------------------------------------------------------
def configmap(**body: Any) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cfg"), **body}


def test_configmap_keys() -> None:
    assert core("ConfigMap", configmap(data={"bad key": "x"})) == [
        "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', "
        "'_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
        "'[-._a-zA-Z0-9]+')"]
    assert core("ConfigMap", configmap(data={"..": "x"})) == ["data[..]: Invalid value: \"..\": must not be '..'"]
    assert core("ConfigMap", configmap(data={"a": "1"}, binaryData={"a": "MQ=="})) == [
        'data[a]: Invalid value: "a": duplicate of key present in binaryData']
    assert core("ConfigMap", configmap(data={"app.properties": "x", "KEY_1": "y"})) == []


def test_configmap_size_limit() -> None:
    assert core("ConfigMap", configmap(data={"big": "x" * (1024 * 1024 + 1)})) == [
        ": Too long: may not be more than 1048576 bytes"]


def test_immutable_configmap_and_secret() -> None:
    old = configmap(data={"a": "1"}, immutable=True)
    changed = configmap(data={"a": "2"}, immutable=True)
    assert texts(updated("", "ConfigMap", changed, old)) == ["data: Forbidden: field is immutable when `immutable` is set"]
    unset = configmap(data={"a": "1"})
    assert texts(updated("", "ConfigMap", unset, old)) == [
        "immutable: Forbidden: field is immutable when `immutable` is set"]
    assert updated("", "ConfigMap", configmap(data={"a": "2"}), configmap(data={"a": "1"})) == []
    sec_old = {"metadata": meta("s"), "data": {"k": "MQ=="}, "immutable": True}
    sec_new = {"metadata": meta("s"), "data": {"k": "Mg=="}, "immutable": True}
    assert texts(updated("", "Secret", sec_new, sec_old)) == [
        "data: Forbidden: field is immutable when `immutable` is set"]


def test_secret_rules() -> None:
    assert core("Secret", {"metadata": meta("s"), "data": {"a b": "eA=="}})[0].startswith(
        'data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters')
    tls = {"metadata": meta("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}
    assert core("Secret", tls) == ["data[tls.key]: Required value"]
    sa = {"metadata": meta("tok"), "type": "kubernetes.io/service-account-token"}
    assert core("Secret", sa) == ["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
    docker = {"metadata": meta("reg"), "type": "kubernetes.io/dockerconfigjson",
              "data": {".dockerconfigjson": base64.b64encode(b'{"auths":{}}').decode()}}
    assert core("Secret", docker) == []
    old = {"metadata": meta("s"), "type": "Opaque"}
    new = {"metadata": meta("s"), "type": "example.com/custom"}
    assert texts(updated("", "Secret", new, old)) == ['type: Invalid value: "example.com/custom": field is immutable']


# -- Namespace, Node -----------------------------------------------------------------------------------------
def test_namespace_spec_finalizers() -> None:
    ns = {"metadata": {"name": "team"}, "spec": {"finalizers": ["custom"]}}
    assert core("Namespace", ns) == [
        'spec.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it fully '
        "qualified"]
    assert core("Namespace", {"metadata": {"name": "team"}, "spec": {"finalizers": ["example.com/x"]}}) == []


def test_node_taints_and_cidrs() -> None:
    node = {"metadata": {"name": "n1"}, "spec": {"taints": [
        {"key": "gpu", "value": "true", "effect": "NoSchedule"}, {"key": "gpu", "value": "x", "effect": "NoSchedule"},
        {"key": "k", "effect": "Never"}], "podCIDRs": ["10.42.0.1/24"]}}
    listed = core("Node", node)
    assert listed[0].startswith('metadata.taints[1]: Duplicate value: {"key":"gpu","value":"x","effect":"NoSchedule"}')
    assert listed[0].endswith(": taints must be unique by key and effect pair")
    assert listed[1] == ('metadata.taints[2].effect: Unsupported value: "Never": supported values: "NoSchedule", '
                         '"PreferNoSchedule", "NoExecute"')
    assert listed[2].startswith('spec.podCIDRs[0]: Invalid value: "10.42.0.1/24": must be a valid CIDR value')
    assert core("Node", {"metadata": {"name": "n1"}, "spec": {"podCIDRs": ["10.42.0.0/24"]}}) == []
    old = {"metadata": {"name": "n1"}, "spec": {"podCIDRs": ["10.42.0.0/24"]}}
    new = {"metadata": {"name": "n1"}, "spec": {"podCIDRs": ["10.42.1.0/24"]}}
    assert texts(updated("", "Node", new, old)) == [
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid']
    assert updated("", "Node", new, {"metadata": {"name": "n1"}, "spec": {}}) == []


# -- Storage -------------------------------------------------------------------------------------------------
def pvc(**spec: Any) -> JSON:
    return {"metadata": meta("data"), "spec": {"accessModes": ["ReadWriteOnce"],
                                               "resources": {"requests": {"storage": "1Gi"}}, **spec}}


def test_pvc_rules() -> None:
    assert core("PersistentVolumeClaim", pvc()) == []
    assert core("PersistentVolumeClaim", pvc(accessModes=[], resources={})) == [
        "spec.accessModes: Required value: at least 1 access mode is required",
        "spec.resources[storage]: Required value",
    ]
    assert core("PersistentVolumeClaim", pvc(accessModes=["ReadWriteSometimes"],
                                             resources={"requests": {"storage": "0"}})) == [
        'spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: "ReadOnlyMany", '
        '"ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"',
        'spec.resources[storage]: Invalid value: "0": must be greater than zero',
    ]


def test_pvc_spec_is_mostly_immutable() -> None:
    old = pvc()
    new = pvc(storageClassName="fast", accessModes=["ReadWriteMany"])
    old["spec"]["storageClassName"] = "fast"
    err = only(updated("", "PersistentVolumeClaim", new, old))
    assert err.field == "spec" and err.detail.startswith(
        "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n")
    bound = pvc()
    bound["status"] = {"phase": "Bound"}
    grown = pvc(resources={"requests": {"storage": "2Gi"}})
    assert updated("", "PersistentVolumeClaim", grown, bound) == []
    shrunk = pvc(resources={"requests": {"storage": "512Mi"}})
    assert texts(updated("", "PersistentVolumeClaim", shrunk, bound)) == [
        "spec.resources.requests.storage: Forbidden: field can not be less than previous value"]
    binding = pvc(volumeName="pv-1")
    assert updated("", "PersistentVolumeClaim", binding, pvc()) == []


def test_pv_rules() -> None:
    pv = {"metadata": {"name": "pv-1"}, "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                                  "hostPath": {"path": "/data"}}}
    assert core("PersistentVolume", pv) == []
    no_source = copy.deepcopy(pv)
    del no_source["spec"]["hostPath"]
    assert core("PersistentVolume", no_source) == ["spec: Required value: must specify a volume type"]
    two = copy.deepcopy(pv)
    two["spec"]["nfs"] = {"server": "nfs", "path": "/x"}
    assert core("PersistentVolume", two) == ["spec.nfs: Forbidden: may not specify more than 1 volume type"]
    bad_capacity = copy.deepcopy(pv)
    bad_capacity["spec"]["capacity"] = {"cpu": "1"}
    assert core("PersistentVolume", bad_capacity) == [
        'spec.capacity: Unsupported value: {"cpu":"1"}: supported values: "storage"']


# -- Endpoints, Event ----------------------------------------------------------------------------------------
def test_endpoints() -> None:
    bad = {"metadata": meta("web"), "subsets": [{"ports": [{"port": 80}]},
                                                {"addresses": [{"ip": "10.1.2"}], "ports": [{"port": 80}]}]}
    assert core("Endpoints", bad) == [
        "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`",
        'subsets[1].addresses[0].ip: Invalid value: "10.1.2": must be a valid IP address, (e.g. 10.9.8.7 or '
        "2001:db8::ffff)",
    ]
    assert core("Endpoints", {"metadata": meta("web"), "subsets": [{"addresses": [{"ip": "10.42.0.5"}],
                                                                    "ports": [{"port": 80}]}]}) == []


def test_core_event_namespace_must_match() -> None:
    event = {"metadata": meta("web.1"), "involvedObject": {"kind": "Pod", "name": "web", "namespace": "other"}}
    assert core("Event", event) == ['involvedObject.namespace: Invalid value: "other": does not match event.namespace']
    event["involvedObject"]["namespace"] = "default"
    assert core("Event", event) == []
    node_event = {"metadata": meta("n1.1"), "involvedObject": {"kind": "Node", "name": "n1"}}
    assert core("Event", node_event) == []


# -- LimitRange, ResourceQuota -------------------------------------------------------------------------------
def test_limit_range() -> None:
    lr = {"metadata": meta("limits"), "spec": {"limits": [
        {"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}},
        {"type": "Pod", "default": {"cpu": "1"}}, {"type": "Pod"}]}}
    listed = core("LimitRange", lr)
    assert 'spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1' in listed
    assert "spec.limits[1].default: Forbidden: may not be specified when `type` is 'Pod'" in listed
    assert 'spec.limits[2].type: Duplicate value: "Pod"' in listed
    ok = {"metadata": meta("limits"), "spec": {"limits": [
        {"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}, "max": {"cpu": "2"}}]}}
    assert core("LimitRange", ok) == []


def test_resource_quota() -> None:
    rq = {"metadata": meta("quota"), "spec": {"hard": {"pods": "-1", "widgets": "3"},
                                              "scopes": ["BestEffort", "NotBestEffort"]}}
    assert core("ResourceQuota", rq) == [
        'spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0',
        'spec.hard[widgets]: Invalid value: "widgets": must be a standard resource type or fully qualified',
        'spec.hard[widgets]: Invalid value: "widgets": must be a standard resource for quota',
        'spec.scopes: Invalid value: ["BestEffort","NotBestEffort"]: conflicting scopes',
    ]
    ok = {"metadata": meta("quota"), "spec": {"hard": {"pods": "10", "requests.cpu": "4",
                                                       "count/deployments.apps": "5"}}}
    assert core("ResourceQuota", ok) == []


@pytest.mark.parametrize("kind", ["ServiceAccount", "ConfigMap", "Secret"])
def test_simple_kinds_need_only_metadata(kind: str) -> None:
    assert core(kind, {"metadata": meta("x")}) == []
    assert [e for e in core(kind, {"metadata": meta("X")}) if e.startswith("metadata.name")]
