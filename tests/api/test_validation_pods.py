"""Pod and pod-spec validation: each rule fails with kube's field path and wording, and passes when fixed."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from validation_helpers import JSON, container, created, only, pod, texts, updated

from nanokube.api import defaults


def pod_errors(**spec: Any) -> list[str]:
    return texts(created("", "Pod", pod(**spec)))


def test_containers_are_required() -> None:
    assert pod_errors(containers=[]) == ["spec.containers: Required value"]


def test_container_name_and_image() -> None:
    errs = created("", "Pod", pod(containers=[{"name": "Web_1", "image": ""}]))
    assert [(e.kind, e.field) for e in errs] == [("Invalid", "spec.containers[0].name"),
                                                 ("Required", "spec.containers[0].image")]
    assert errs[0].message().startswith('Invalid value: "Web_1": a lowercase RFC 1123 label must consist of')


def test_container_names_are_unique_across_init_and_regular() -> None:
    assert pod_errors(containers=[container("a"), container("a")]) == [
        'spec.containers[1].name: Duplicate value: "a"']
    assert pod_errors(initContainers=[container("app")]) == ['spec.initContainers[0].name: Duplicate value: "app"']
    assert pod_errors(initContainers=[container("setup")]) == []


def test_ports() -> None:
    ports = [{"containerPort": 70000}, {"containerPort": 80, "protocol": "HTTP"}, {"containerPort": 0},
             {"containerPort": 81, "name": "web"}, {"containerPort": 82, "name": "web"}]
    assert pod_errors(containers=[container(ports=ports)]) == [
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        'spec.containers[0].ports[1].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
        "spec.containers[0].ports[2].containerPort: Required value",
        'spec.containers[0].ports[4].name: Duplicate value: "web"',
    ]
    assert pod_errors(containers=[container(ports=[{"containerPort": 8080, "name": "http", "protocol": "UDP"}])]) == []


def test_port_names() -> None:
    errs = pod_errors(containers=[container(ports=[{"containerPort": 80, "name": "http--web-server"}])])
    assert errs == [
        'spec.containers[0].ports[0].name: Invalid value: "http--web-server": must be no more than 15 characters',
        'spec.containers[0].ports[0].name: Invalid value: "http--web-server": must not contain consecutive hyphens',
    ]


def test_host_port_conflicts() -> None:
    ports = [{"containerPort": 80, "hostPort": 8080}]
    assert pod_errors(containers=[container("a", ports=ports), container("b", ports=ports)]) == [
        'spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080"']


def test_resources_valid_and_requests_within_limits() -> None:
    over = {"limits": {"cpu": "1", "memory": "128Mi"}, "requests": {"cpu": "2"}}
    assert pod_errors(containers=[container(resources=over)]) == [
        'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1']
    negative = {"requests": {"memory": "-1"}}
    assert pod_errors(containers=[container(resources=negative)]) == [
        'spec.containers[0].resources.requests[memory]: Invalid value: "-1": must be greater than or equal to 0']
    garbage = {"limits": {"cpu": "lots"}}  # a Pod's requests default to its limits: both are reported
    errs = created("", "Pod", pod(containers=[container(resources=garbage)]))
    assert [e.field for e in errs] == ["spec.containers[0].resources.limits[cpu]",
                                       "spec.containers[0].resources.requests[cpu]"]
    assert errs[0].detail.startswith("quantities must match the regular expression")
    unknown = {"requests": {"gpu": "1"}}
    assert pod_errors(containers=[container(resources=unknown)]) == [
        'spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard resource type or '
        "fully qualified",
        'spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard resource for '
        "containers",
    ]
    extended = {"limits": {"example.com/gpu": "1"}, "requests": {"example.com/gpu": "2"}}
    assert pod_errors(containers=[container(resources=extended)]) == [
        'spec.containers[0].resources.requests: Invalid value: "2": must be equal to example.com/gpu limit of 1']
    fine = {"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "250m", "memory": "512Mi"}}
    assert pod_errors(containers=[container(resources=fine)]) == []


def test_restart_and_dns_policies() -> None:
    assert pod_errors(restartPolicy="Sometimes") == [
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"']
    assert pod_errors(dnsPolicy="Google") == [
        'spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", "ClusterFirst", '
        '"Default", "None"']
    assert pod_errors(dnsPolicy="None") == ["spec.dnsConfig: Required value: must provide `dnsConfig` when "
                                            "`dnsPolicy` is None"]
    assert pod_errors(dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1"]}) == []
    assert pod_errors(restartPolicy="OnFailure") == []


def test_volumes_names_sources_and_mounts() -> None:
    volumes = [{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}},
               {"name": "two", "emptyDir": {}, "hostPath": {"path": "/tmp"}}, {"name": "cfg", "configMap": {}}]
    mounts = [{"name": "data", "mountPath": "/data"}, {"name": "missing", "mountPath": "/m"},
              {"name": "data", "mountPath": "/data"}]
    assert pod_errors(volumes=volumes, containers=[container(volumeMounts=mounts)]) == [
        'spec.volumes[1].name: Duplicate value: "data"',
        "spec.volumes[2].hostPath: Forbidden: may not specify more than 1 volume type",
        "spec.volumes[3].configMap.name: Required value",
        'spec.containers[0].volumeMounts[1].name: Not found: "missing"',
        'spec.containers[0].volumeMounts[2].mountPath: Invalid value: "/data": must be unique',
    ]
    ok_volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "pvc"}},
                  {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "a.txt"}]}}]
    ok_mounts = [{"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True}]
    assert pod_errors(volumes=ok_volumes, containers=[container(volumeMounts=ok_mounts)]) == []


def test_volume_modes_and_paths() -> None:
    volumes = [{"name": "s", "secret": {"secretName": "s", "defaultMode": 1000,
                                        "items": [{"key": "k", "path": "../escape"}]}},
               {"name": "h", "hostPath": {"path": "/var", "type": "Folder"}}]
    assert pod_errors(volumes=volumes) == [
        "spec.volumes[0].secret.defaultMode: Invalid value: 1000: must be a number between 0 and 0777 (octal), both "
        "inclusive",
        "spec.volumes[0].secret.items[0].path: Invalid value: \"../escape\": must not contain '..'",
        'spec.volumes[1].hostPath.type: Unsupported value: "Folder": supported values: "", "BlockDevice", '
        '"CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"',
    ]


def test_probes_need_exactly_one_handler() -> None:
    two = {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}
    assert pod_errors(containers=[container(livenessProbe=two)]) == [
        "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"]
    assert pod_errors(containers=[container(readinessProbe={"periodSeconds": 5})]) == [
        "spec.containers[0].readinessProbe: Required value: must specify a handler type"]
    bad = {"httpGet": {"port": 0}, "successThreshold": 2}
    assert pod_errors(containers=[container(livenessProbe=bad)]) == [
        "spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
    ]
    assert pod_errors(containers=[container(livenessProbe={"httpGet": {"port": "http"}},
                                            readinessProbe={"exec": {"command": ["cat", "/ready"]},
                                                            "successThreshold": 3})]) == []


def test_env_names_and_sources() -> None:
    env = [{"name": ""}, {"name": "A=B"}, {"name": "X", "value": "1", "valueFrom": {"fieldRef": {
        "fieldPath": "metadata.name"}}}, {"name": "Y", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]
    errs = pod_errors(containers=[container(env=env)])
    assert errs[:3] == [
        "spec.containers[0].env[0].name: Required value",
        'spec.containers[0].env[1].name: Invalid value: "A=B": a valid environment variable name must consist only '
        "of printable ASCII characters other than '='",
        'spec.containers[0].env[2].valueFrom: Invalid value: "": may not be specified when `value` is not empty',
    ]
    assert errs[3].startswith('spec.containers[0].env[3].valueFrom.fieldRef.fieldPath: Unsupported value: '
                              '"spec.bogus": supported values: "metadata.name"')
    assert pod_errors(containers=[container(env=[{"name": "my.env-NAME_1", "value": "x"},
                                                 {"name": "POD", "valueFrom": {"fieldRef": {
                                                     "fieldPath": "metadata.labels['app']"}}}])]) == []


def test_tolerations() -> None:
    tolerations = [{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Within"},
                   {"key": "k", "operator": "Exists", "value": "v"},
                   {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}, {"key": "k", "effect": "Sometimes"}]
    assert pod_errors(tolerations=tolerations)[:5] == [
        'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which '
        'means "match all values and all keys"',
        'spec.tolerations[1].operator: Unsupported value: "Within": supported values: "Equal", "Exists"',
        "spec.tolerations[2].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
        "spec.tolerations[3].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when "
        "`tolerationSeconds` is set",
        'spec.tolerations[4].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", '
        '"PreferNoSchedule", "NoExecute"',
    ]
    assert pod_errors(tolerations=[{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]) == []


def test_node_selector_and_affinity() -> None:
    assert pod_errors(nodeSelector={"disk": "ssd fast"})[0].startswith(
        'spec.nodeSelector: Invalid value: "ssd fast": a valid label must be an empty string')
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In"}, {"key": "zone", "operator": "Near"}]}]}},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 0, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                              "labelSelector": {"matchLabels": {"app": "web"}}}}]}}
    np = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
    assert pod_errors(affinity=affinity) == [
        f"{np}.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        f'{np}.matchExpressions[1].operator: Invalid value: "Near": not a valid selector operator',
        "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: "
        "must be in the range 1-100",
    ]
    affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] = [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]
    affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] = 50
    assert pod_errors(affinity=affinity) == []
    no_topology = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {}}]}}
    assert pod_errors(affinity=no_topology)[0] == (
        "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: "
        "can not be empty")


def test_misc_spec_fields() -> None:
    assert pod_errors(activeDeadlineSeconds=0) == [
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"]
    assert pod_errors(serviceAccountName="Bad_SA")[0].startswith('spec.serviceAccountName: Invalid value: "Bad_SA"')
    assert pod_errors(hostname="a.b") == ['spec.hostname: Invalid value: "a.b": must not contain dots']
    assert pod_errors(imagePullSecrets=[{"name": "reg", "extra": 1}]) == [
        'spec.imagePullSecrets[0]: Invalid value: {"name":"reg","extra":1}: only name may be set']
    assert pod_errors(activeDeadlineSeconds=60, hostname="web-0", imagePullSecrets=[{"name": "reg"}]) == []


def test_pod_only_rules() -> None:
    assert pod_errors(containers=[container(image=" nginx")]) == [
        'spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing whitespace']
    assert pod_errors(ephemeralContainers=[{"name": "dbg", "image": "busybox"}]) == [
        "spec.ephemeralContainers: Forbidden: cannot be set on create"]
    assert pod_errors(nodeName="n1", schedulingGates=[{"name": "example.com/wait"}]) == [
        "spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared"]
    hostnet = pod(hostNetwork=True, containers=[container(ports=[{"containerPort": 80, "hostPort": 81}])])
    assert texts(created("", "Pod", hostnet)) == [
        "spec.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` when `hostNetwork` is "
        "true"]


def live_pod(**spec: Any) -> JSON:
    obj = pod(**spec)
    defaults.apply("", "Pod", obj)
    return obj


def test_pod_update_allows_images_deadline_and_added_tolerations() -> None:
    old = live_pod(activeDeadlineSeconds=100)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    new["spec"]["activeDeadlineSeconds"] = 50
    new["spec"]["tolerations"].append({"key": "k", "operator": "Exists"})
    new["metadata"]["labels"] = {"changed": "yes"}
    assert updated("", "Pod", new, old) == []


def test_pod_update_forbids_other_spec_changes() -> None:
    old = live_pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    err = only(updated("", "Pod", new, old))
    assert (err.kind, err.field) == ("Forbidden", "spec")
    assert err.detail.startswith(
        "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
        "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n")
    assert "containers" in err.detail.split("\n", 1)[1]


def test_pod_update_container_count_deadline_and_tolerations() -> None:
    old = live_pod(activeDeadlineSeconds=100, tolerations=[{"key": "gpu", "operator": "Exists"}])
    more = copy.deepcopy(old)
    more["spec"]["containers"].append(container("side"))
    assert texts(updated("", "Pod", more, old)) == [
        "spec.containers: Forbidden: pod updates may not add or remove containers"]
    longer = copy.deepcopy(old)
    longer["spec"]["activeDeadlineSeconds"] = 200
    assert texts(updated("", "Pod", longer, old)) == [
        "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"]
    removed = copy.deepcopy(old)
    removed["spec"]["tolerations"] = removed["spec"]["tolerations"][1:]
    assert texts(updated("", "Pod", removed, old)) == [
        "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"]
    reseconded = copy.deepcopy(old)
    reseconded["spec"]["tolerations"][1]["tolerationSeconds"] = 10
    assert updated("", "Pod", reseconded, old) == []


@pytest.mark.parametrize("field", ["schedulerName", "restartPolicy"])
def test_pod_update_forbids_changing_defaulted_fields(field: str) -> None:
    old = live_pod()
    new = copy.deepcopy(old)
    new["spec"][field] = "Never" if field == "restartPolicy" else "other-scheduler"
    assert [e.field for e in updated("", "Pod", new, old)] == ["spec"]
