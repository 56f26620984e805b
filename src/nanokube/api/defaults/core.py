"""Core-group defaults: Pod (with the admission defaults a real cluster adds), Service, Namespace, Secret,
PersistentVolume(Claim), Endpoints, Node, LimitRange, ReplicationController.

A Pod gets more than a pod template: requests copied from limits and ``enableServiceLinks`` (``SetDefaults_Pod``),
plus what kube-apiserver's default admission plugins write — ``serviceAccountName: default`` (ServiceAccount),
``priority: 0``/``preemptionPolicy: PreemptLowerPriority`` (Priority) and the 300-second not-ready/unreachable
tolerations (DefaultTolerationSeconds). Services get types, policies and IP families; the cluster IP itself is
the server's to allocate.
"""

from __future__ import annotations

import base64

from .podspec import JSON, claim_spec, dicts, ensure, pod_spec, pod_template, round_quantities, sub

_SYSTEM_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
_DEFAULT_TOLERATIONS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def pod(obj: JSON) -> None:
    spec = ensure(obj, "spec")
    pod_spec(spec)
    for name in ("initContainers", "containers"):
        for ctr in dicts(spec.get(name)):
            _requests_from_limits(ensure(ctr, "resources"))
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork"):
        for name in ("initContainers", "containers"):
            for ctr in dicts(spec.get(name)):
                for port in dicts(ctr.get("ports")):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
    _admission(spec)


def _requests_from_limits(resources: JSON) -> None:
    limits = resources.get("limits")
    if not isinstance(limits, dict):
        return
    requests = ensure(resources, "requests")
    for name, value in limits.items():
        requests.setdefault(name, value)


def _admission(spec: JSON) -> None:
    """What the ServiceAccount, Priority and DefaultTolerationSeconds admission plugins add to a new pod."""
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = spec["serviceAccount"] = account
    class_name = spec.get("priorityClassName")
    if spec.get("priority") is None:
        if not class_name:
            spec["priority"] = 0
        elif class_name in _SYSTEM_PRIORITIES:
            spec["priority"] = _SYSTEM_PRIORITIES[class_name]
    if spec.get("preemptionPolicy") is None and (not class_name or class_name in _SYSTEM_PRIORITIES):
        spec["preemptionPolicy"] = "PreemptLowerPriority"
    tolerations = spec.get("tolerations")
    if tolerations is not None and not isinstance(tolerations, list):
        return
    present = dicts(tolerations)
    added = []
    for key in _DEFAULT_TOLERATIONS:
        tolerated = any(t.get("key") in (key, "", None) and t.get("effect") in ("NoExecute", "", None) for t in present)
        if not tolerated:
            added.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    if added:
        spec["tolerations"] = [*(tolerations or []), *added]


def service(obj: JSON) -> None:
    spec = ensure(obj, "spec")
    affinity = spec.get("sessionAffinity") or "None"
    spec["sessionAffinity"] = affinity
    if affinity == "None":
        spec.pop("sessionAffinityConfig", None)
    elif affinity == "ClientIP":
        client_ip = ensure(ensure(spec, "sessionAffinityConfig"), "clientIP")
        if client_ip.get("timeoutSeconds") is None:
            client_ip["timeoutSeconds"] = 10800
    kind = spec.get("type") or "ClusterIP"
    spec["type"] = kind
    for port in dicts(spec.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    external = kind in ("NodePort", "LoadBalancer") or bool(spec.get("externalIPs"))
    if external and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if kind != "ExternalName":
        _ip_families(spec)


def _ip_families(spec: JSON) -> None:
    """What the service REST storage fills on a single-stack IPv4 cluster before allocating IPs."""
    headless = spec.get("clusterIP") == "None" or spec.get("clusterIPs") == ["None"]
    if spec.get("ipFamilyPolicy") is None:
        no_selector = not spec.get("selector")
        spec["ipFamilyPolicy"] = "RequireDualStack" if headless and no_selector else "SingleStack"
    if not spec.get("ipFamilies"):
        spec["ipFamilies"] = ["IPv4"]
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]


def namespace(obj: JSON) -> None:
    """The ``kubernetes.io/metadata.name`` label (always the name), ``status.phase: Active``, and the
    ``kubernetes`` finalizer when ``spec.finalizers`` is absent altogether (an empty list is what finalizing
    leaves behind, and stays empty)."""
    meta = ensure(obj, "metadata")
    name = meta.get("name")
    if name:
        ensure(meta, "labels")["kubernetes.io/metadata.name"] = name
    spec = ensure(obj, "spec")
    if "finalizers" not in spec:
        spec["finalizers"] = ["kubernetes"]
    status = ensure(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Active"


def namespace_create(obj: JSON) -> None:
    """On create only (the finalizer is removed over the object's life): the ``kubernetes`` finalizer."""
    spec = ensure(obj, "spec")
    finalizers = spec.get("finalizers")
    if not isinstance(finalizers, list) or not finalizers:
        spec["finalizers"] = ["kubernetes"]
    elif "kubernetes" not in finalizers:
        finalizers.append("kubernetes")
    obj["status"] = {"phase": "Active"}


def secret(obj: JSON) -> None:
    """``type: Opaque``, and ``stringData`` folded into ``data`` (kube never stores stringData)."""
    if not obj.get("type"):
        obj["type"] = "Opaque"
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = ensure(obj, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def persistent_volume(obj: JSON) -> None:
    spec = ensure(obj, "spec")
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    round_quantities(spec.get("capacity"))
    status = ensure(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Pending"


def persistent_volume_claim(obj: JSON) -> None:
    claim_spec(ensure(obj, "spec"))
    status = ensure(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Pending"


def endpoints(obj: JSON) -> None:
    for subset in dicts(obj.get("subsets")):
        for port in dicts(subset.get("ports")):
            if not port.get("protocol"):
                port["protocol"] = "TCP"


def node(obj: JSON) -> None:
    status = sub(obj, "status")
    if status is None:
        return
    round_quantities(status.get("capacity"))
    capacity = status.get("capacity")
    if status.get("allocatable") is None and isinstance(capacity, dict):
        status["allocatable"] = dict(capacity)


def limit_range(obj: JSON) -> None:
    """``SetDefaults_LimitRangeItem``: for Container items, default limit from max, request from limit or min."""
    for item in dicts(ensure(obj, "spec").get("limits")):
        for name in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            round_quantities(item.get(name))
        if item.get("type") != "Container":
            continue
        default, request = ensure(item, "default"), ensure(item, "defaultRequest")
        for name, value in (sub(item, "max") or {}).items():
            default.setdefault(name, value)
        for name, value in default.items():
            request.setdefault(name, value)
        for name, value in (sub(item, "min") or {}).items():
            request.setdefault(name, value)


def resource_quota(obj: JSON) -> None:
    round_quantities((sub(obj, "spec") or {}).get("hard"))


def replication_controller(obj: JSON) -> None:
    spec = ensure(obj, "spec")
    template = sub(spec, "template")
    labels = (sub(template, "metadata") or {}).get("labels") if template is not None else None
    if isinstance(labels, dict):
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = ensure(obj, "metadata")
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    pod_template(template)


def pod_template_object(obj: JSON) -> None:
    """The PodTemplate kind (``template`` at the top level)."""
    pod_template(obj.get("template"))
