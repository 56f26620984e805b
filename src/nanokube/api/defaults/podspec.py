"""Defaults of everything inside a pod spec, shared by Pods and every pod template (``SetDefaults_PodSpec``,
``SetDefaults_Container``, ``SetDefaults_Probe``, volume sources, ``ObjectFieldSelector``...).

Kube applies these whenever an object is decoded, so a Deployment's template shows the same
``terminationMessagePath``/``imagePullPolicy``/``dnsPolicy`` a Pod does. The few defaults that only a real
Pod receives (requests copied from limits, ``enableServiceLinks``, admission defaults) live in ``core``.
Every function fills only what is missing and never overwrites a value the client sent.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from nanokube.api.quantity import Quantity, format_quantity

JSON = dict[str, Any]

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_DEFAULT_FILE_MODE = 0o644  # 420


def dicts(value: Any) -> list[JSON]:
    """The dict items of a list field (anything else is left for validation to report)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def sub(obj: JSON, name: str) -> JSON | None:
    value = obj.get(name)
    return value if isinstance(value, dict) else None


def ensure(obj: JSON, name: str) -> JSON:
    """``obj[name]`` as a dict, created empty when absent (a Go struct that always serializes)."""
    value = obj.get(name)
    if not isinstance(value, dict):
        value = obj[name] = {}
    return value


def image_tag(image: str) -> str:
    """The tag ``parsers.ParseImageName`` finds: ``latest`` when neither tag nor digest is given."""
    if not image or image != image.strip():
        return ""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.split(":", 1)[1]
    return "" if digest else "latest"


def round_quantities(resources: Any) -> None:
    """``SetDefaults_ResourceList``: round each quantity up to milli precision, kept in canonical form."""
    if not isinstance(resources, dict):
        return
    for name, text in list(resources.items()):
        try:
            quantity = Quantity.parse(text)
        except (ValueError, TypeError):
            continue  # validation reports it
        milli = quantity.value * 1000
        if milli.denominator != 1:
            rounded = Fraction(math.ceil(milli), 1000)
            resources[name] = format_quantity(rounded, quantity.format)
        else:
            resources[name] = str(quantity)


def container(ctr: JSON) -> None:
    if not ctr.get("imagePullPolicy"):
        image = ctr.get("image")
        tag = image_tag(image if isinstance(image, str) else "")
        ctr["imagePullPolicy"] = "Always" if tag == "latest" else "IfNotPresent"
    if not ctr.get("terminationMessagePath"):
        ctr["terminationMessagePath"] = "/dev/termination-log"
    if not ctr.get("terminationMessagePolicy"):
        ctr["terminationMessagePolicy"] = "File"
    for port in dicts(ctr.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
    resources = ensure(ctr, "resources")
    round_quantities(resources.get("limits"))
    round_quantities(resources.get("requests"))
    for var in dicts(ctr.get("env")):
        value_from = sub(var, "valueFrom")
        if value_from is not None:
            field_selector(sub(value_from, "fieldRef"))
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe(sub(ctr, name))
    lifecycle = sub(ctr, "lifecycle")
    if lifecycle is not None:
        for hook in ("postStart", "preStop"):
            handler = sub(lifecycle, hook)
            if handler is not None:
                http_get(sub(handler, "httpGet"))


def field_selector(selector: JSON | None) -> None:
    if selector is not None and not selector.get("apiVersion"):
        selector["apiVersion"] = "v1"


def http_get(action: JSON | None) -> None:
    if action is None:
        return
    if not action.get("path"):
        action["path"] = "/"
    if not action.get("scheme"):
        action["scheme"] = "HTTP"


def probe(p: JSON | None) -> None:
    if p is None:
        return
    for name, default in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                          ("failureThreshold", 3)):
        if not p.get(name):
            p[name] = default
    http_get(sub(p, "httpGet"))
    grpc = sub(p, "grpc")
    if grpc is not None:
        grpc.setdefault("service", "")


def volume(vol: JSON) -> None:
    sources = [k for k, v in vol.items() if k != "name" and v is not None]
    if not sources:
        vol["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        source = sub(vol, key)
        if source is not None and source.get("defaultMode") is None:
            source["defaultMode"] = _DEFAULT_FILE_MODE
    host_path = sub(vol, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""
    downward = sub(vol, "downwardAPI")
    if downward is not None:
        for item in dicts(downward.get("items")):
            field_selector(sub(item, "fieldRef"))
    projected = sub(vol, "projected")
    if projected is not None:
        _projected(projected)
    _legacy_sources(vol)
    ephemeral = sub(vol, "ephemeral")
    template = sub(ephemeral, "volumeClaimTemplate") if ephemeral is not None else None
    if template is not None:
        claim_spec(sub(template, "spec"))


def _projected(projected: JSON) -> None:
    for source in dicts(projected.get("sources")):
        token = sub(source, "serviceAccountToken")
        if token is not None and token.get("expirationSeconds") is None:
            token["expirationSeconds"] = 3600
        downward = sub(source, "downwardAPI")
        if downward is not None:
            for item in dicts(downward.get("items")):
                field_selector(sub(item, "fieldRef"))


def _legacy_sources(vol: JSON) -> None:
    """In-tree volume plugins' defaults, for objects that still carry them."""
    iscsi = sub(vol, "iscsi")
    if iscsi is not None and not iscsi.get("iscsiInterface"):
        iscsi["iscsiInterface"] = "default"
    rbd = sub(vol, "rbd")
    if rbd is not None:
        for name, default in (("pool", "rbd"), ("user", "admin"), ("keyring", "/etc/ceph/keyring")):
            if not rbd.get(name):
                rbd[name] = default
    azure = sub(vol, "azureDisk")
    if azure is not None:
        azure_defaults: tuple[tuple[str, Any], ...] = (("cachingMode", "ReadWrite"), ("fsType", "ext4"),
                                                       ("readOnly", False), ("kind", "Shared"))
        for name, default in azure_defaults:
            if azure.get(name) is None:
                azure[name] = default


def claim_spec(spec: JSON | None) -> None:
    """``SetDefaults_PersistentVolumeClaimSpec``: ``volumeMode: Filesystem``."""
    if spec is None:
        return
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    resources = sub(spec, "resources")
    if resources is not None:
        round_quantities(resources.get("requests"))
        round_quantities(resources.get("limits"))


def pod_spec(spec: JSON) -> None:
    """``SetDefaults_PodSpec`` plus its containers and volumes."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    for name in _CONTAINER_LISTS:
        for ctr in dicts(spec.get(name)):
            container(ctr)
    for vol in dicts(spec.get("volumes")):
        volume(vol)
    round_quantities(spec.get("overhead"))


def pod_template(template: Any) -> None:
    """A PodTemplateSpec inside a workload: only its spec has defaults."""
    if isinstance(template, dict):
        pod_spec(ensure(template, "spec"))
