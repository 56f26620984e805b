"""Containers of a pod spec: what ``validateContainers``/``validateInitContainers`` check, message for message.

One function per concern (ports, env, mounts, resources, probes) so the pod-spec module only sequences them.
Container names must be DNS-1123 labels, unique across ``containers`` and ``initContainers``; probes need
exactly one handler; requests may not exceed limits (``must be less than or equal to cpu limit of 1``).
"""

from __future__ import annotations

from typing import Any

from . import formats, quantities
from .field import (
    Errors,
    as_dict,
    as_int,
    as_list,
    as_str,
    child,
    duplicate,
    forbidden,
    inclusive_range_error,
    index,
    invalid,
    key,
    nonnegative,
    not_found,
    not_supported,
    required,
)
from .volumes import local_descending_path

PROTOCOLS = ("SCTP", "TCP", "UDP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc", "sleep")
_ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                    "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs")
_RESOURCE_FIELDS = ("limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                    "requests.ephemeral-storage", "requests.memory")


def validate_containers(containers: Any, volumes: dict[str, Any], grace: Any, path: str) -> Errors:
    """Regular containers: at least one, unique names, probes and lifecycle allowed."""
    items = as_list(containers)
    if not items:
        return [required(path)]
    errs: Errors = []
    seen: set[str] = set()
    for i, ctr in enumerate(items):
        ctr, cpath = as_dict(ctr), index(path, i)
        errs.extend(_common(ctr, volumes, cpath))
        name = as_str(ctr.get("name"))
        if name in seen:
            errs.append(duplicate(child(cpath, "name"), name))
        seen.add(name)
        errs.extend(_probes_and_lifecycle(ctr, grace, cpath))
        if ctr.get("restartPolicy") is not None:
            errs.append(forbidden(child(cpath, "restartPolicy"), "may not be set for non-init containers"))
    return errs + host_port_conflicts(items, path)


def validate_init_containers(init: Any, containers: Any, volumes: dict[str, Any], grace: Any, path: str) -> Errors:
    errs: Errors = []
    seen = {as_str(as_dict(c).get("name")) for c in as_list(containers)}
    for i, ctr in enumerate(as_list(init)):
        ctr, cpath = as_dict(ctr), index(path, i)
        errs.extend(_common(ctr, volumes, cpath))
        policy = ctr.get("restartPolicy")
        if policy is not None and policy != "Always":
            errs.append(not_supported(child(cpath, "restartPolicy"), policy, ["Always"]))
        name = as_str(ctr.get("name"))
        if name in seen:
            errs.append(duplicate(child(cpath, "name"), name))
        elif name:
            seen.add(name)
        errs.extend(host_port_conflicts([ctr], path))
        if policy == "Always":
            errs.extend(_probes_and_lifecycle(ctr, grace, cpath))
            continue
        for field in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
            if ctr.get(field) is not None:
                errs.append(forbidden(child(cpath, field), "may not be set for init containers without "
                                      "restartPolicy=Always"))
    return errs


def _common(ctr: dict[str, Any], volumes: dict[str, Any], path: str) -> Errors:
    errs: Errors = []
    name = as_str(ctr.get("name"))
    if not name:
        errs.append(required(child(path, "name")))
    else:
        errs.extend(invalid(child(path, "name"), name, m) for m in formats.is_dns1123_label(name))
    if not as_str(ctr.get("image")):
        errs.append(required(child(path, "image")))
    policy = ctr.get("terminationMessagePolicy")
    if not policy:
        errs.append(required(child(path, "terminationMessagePolicy")))
    elif policy not in ("File", "FallbackToLogsOnError"):
        errs.append(not_supported(child(path, "terminationMessagePolicy"), policy, ["File", "FallbackToLogsOnError"]))
    errs.extend(validate_ports(ctr.get("ports"), child(path, "ports")))
    errs.extend(validate_env(ctr.get("env"), child(path, "env")))
    errs.extend(_env_from(ctr.get("envFrom"), child(path, "envFrom")))
    errs.extend(_volume_mounts(ctr.get("volumeMounts"), volumes, child(path, "volumeMounts")))
    pull = ctr.get("imagePullPolicy")
    if not pull:
        errs.append(required(child(path, "imagePullPolicy")))
    elif pull not in PULL_POLICIES:
        errs.append(not_supported(child(path, "imagePullPolicy"), pull, PULL_POLICIES))
    return errs + validate_resources(ctr.get("resources"), child(path, "resources"))


def validate_ports(ports: Any, path: str) -> Errors:
    errs: Errors = []
    names: set[str] = set()
    for i, port in enumerate(as_list(ports)):
        port, ppath = as_dict(port), index(path, i)
        name = as_str(port.get("name"))
        if name:
            msgs = formats.is_valid_port_name(name)
            errs.extend(invalid(child(ppath, "name"), name, m) for m in msgs)
            if not msgs and name in names:
                errs.append(duplicate(child(ppath, "name"), name))
            names.add(name)
        number = as_int(port.get("containerPort")) or 0
        if not number:
            errs.append(required(child(ppath, "containerPort")))
        else:
            errs.extend(invalid(child(ppath, "containerPort"), number, m) for m in formats.is_valid_port_num(number))
        host = as_int(port.get("hostPort")) or 0
        if host:
            errs.extend(invalid(child(ppath, "hostPort"), host, m) for m in formats.is_valid_port_num(host))
        protocol = port.get("protocol")
        if not protocol:
            errs.append(required(child(ppath, "protocol")))
        elif protocol not in PROTOCOLS:
            errs.append(not_supported(child(ppath, "protocol"), protocol, PROTOCOLS))
    return errs


def host_port_conflicts(containers: list[Any], path: str) -> Errors:
    errs: Errors = []
    seen: set[str] = set()
    for ci, ctr in enumerate(containers):
        for pi, port in enumerate(as_list(as_dict(ctr).get("ports"))):
            port = as_dict(port)
            host = as_int(port.get("hostPort")) or 0
            if not host:
                continue
            ident = f"{as_str(port.get('protocol'))}/{as_str(port.get('hostIP'))}/{host}"
            if ident in seen:
                errs.append(duplicate(child(index(child(index(path, ci), "ports"), pi), "hostPort"), ident))
            seen.add(ident)
    return errs


def validate_env(env: Any, path: str) -> Errors:
    errs: Errors = []
    for i, var in enumerate(as_list(env)):
        var, vpath = as_dict(var), index(path, i)
        name = as_str(var.get("name"))
        if not name:
            errs.append(required(child(vpath, "name")))
        else:
            errs.extend(invalid(child(vpath, "name"), name, m) for m in formats.is_relaxed_env_var_name(name))
        errs.extend(_value_from(var, child(vpath, "valueFrom")))
    return errs


def _value_from(var: dict[str, Any], path: str) -> Errors:
    source = var.get("valueFrom")
    if not isinstance(source, dict):
        return []
    errs: Errors = []
    kinds = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef") if source.get(k)]
    field_ref = as_dict(source.get("fieldRef"))
    if field_ref:
        fpath = child(path, "fieldRef")
        field_path = as_str(field_ref.get("fieldPath"))
        if not as_str(field_ref.get("apiVersion")):
            errs.append(required(child(fpath, "apiVersion")))
        elif not field_path:
            errs.append(required(child(fpath, "fieldPath")))
        elif not field_path.startswith(("metadata.labels[", "metadata.annotations[")) and \
                field_path not in _ENV_FIELD_PATHS:
            errs.append(not_supported(child(fpath, "fieldPath"), field_path, _ENV_FIELD_PATHS))
    resource_ref = as_dict(source.get("resourceFieldRef"))
    if resource_ref:
        resource = as_str(resource_ref.get("resource"))
        rpath = child(path, "resourceFieldRef", "resource")
        if not resource:
            errs.append(required(rpath))
        elif resource not in _RESOURCE_FIELDS and not resource.startswith(("requests.hugepages-", "limits.hugepages-")):
            errs.append(not_supported(rpath, resource, _RESOURCE_FIELDS))
    for kind in ("configMapKeyRef", "secretKeyRef"):
        ref = as_dict(source.get(kind))
        if ref and not as_str(ref.get("key")):
            errs.append(required(child(path, kind, "key")))
        elif ref:
            k = as_str(ref.get("key"))
            errs.extend(invalid(child(path, kind, "key"), k, m) for m in formats.is_config_map_key(k))
    if not kinds:
        errs.append(invalid(path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
                            "`secretKeyRef`"))
    elif as_str(var.get("value")):
        errs.append(invalid(path, "", "may not be specified when `value` is not empty"))
    elif len(kinds) > 1:
        errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def _env_from(sources: Any, path: str) -> Errors:
    errs: Errors = []
    for i, source in enumerate(as_list(sources)):
        source, spath = as_dict(source), index(path, i)
        prefix = as_str(source.get("prefix"))
        if prefix:
            errs.extend(invalid(child(spath, "prefix"), prefix, m) for m in formats.is_relaxed_env_var_name(prefix))
        refs = [k for k in ("configMapRef", "secretRef") if isinstance(source.get(k), dict)]
        for ref in refs:
            if not as_str(source[ref].get("name")):
                errs.append(required(child(spath, ref, "name")))
        if not refs:
            errs.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(refs) > 1:
            errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def _volume_mounts(mounts: Any, volumes: dict[str, Any], path: str) -> Errors:
    errs: Errors = []
    mount_points: set[str] = set()
    for i, mount in enumerate(as_list(mounts)):
        mount, mpath = as_dict(mount), index(path, i)
        name, target = as_str(mount.get("name")), as_str(mount.get("mountPath"))
        if not name:
            errs.append(required(child(mpath, "name")))
        if name not in volumes:
            errs.append(not_found(child(mpath, "name"), name))
        if not target:
            errs.append(required(child(mpath, "mountPath")))
        if target in mount_points:
            errs.append(invalid(child(mpath, "mountPath"), target, "must be unique"))
        mount_points.add(target)
        sub_path, sub_expr = as_str(mount.get("subPath")), as_str(mount.get("subPathExpr"))
        if sub_path:
            errs.extend(local_descending_path(sub_path, child(path, "subPath")))
        if sub_expr:
            if sub_path:
                errs.append(invalid(child(mpath, "subPathExpr"), sub_expr, "subPathExpr and subPath are mutually "
                                    "exclusive"))
            errs.extend(local_descending_path(sub_expr, child(path, "subPathExpr")))
    return errs


def validate_resources(resources: Any, path: str) -> Errors:
    """``ValidateContainerResourceRequirements``: names, quantities, and requests within limits."""
    res = as_dict(resources)
    limits, requests = as_dict(res.get("limits")), as_dict(res.get("requests"))
    lim_path, req_path = child(path, "limits"), child(path, "requests")
    errs: Errors = []
    for name, value in limits.items():
        errs.extend(quantities.validate_container_resource_name(name, key(lim_path, name)))
        errs.extend(quantities.validate_value(name, value, key(lim_path, name)))
    for name, value in requests.items():
        errs.extend(quantities.validate_container_resource_name(name, key(req_path, name)))
        errs.extend(quantities.validate_value(name, value, key(req_path, name)))
        errs.extend(_request_within_limit(name, value, limits, req_path, lim_path))
    named = set(limits) | set(requests)
    if not named & {"cpu", "memory"} and any(quantities.is_hugepages(n) for n in named):
        errs.append(forbidden(path, "HugePages require cpu or memory"))
    return errs


def _request_within_limit(name: str, value: Any, limits: dict[str, Any], req_path: str, lim_path: str) -> Errors:
    request = quantities.parse(value)
    if name not in limits:
        if quantities.overcommit_allowed(name):
            return []
        return [required(lim_path, "Limit must be set for non overcommitable resources")]
    limit = quantities.parse(limits[name])
    if request is None or limit is None:
        return []
    shown, limit_text = quantities.text(value), quantities.text(limits[name])
    if request != limit and not quantities.overcommit_allowed(name):
        return [invalid(req_path, shown, f"must be equal to {name} limit of {limit_text}")]
    if request > limit:
        return [invalid(req_path, shown, f"must be less than or equal to {name} limit of {limit_text}")]
    return []


def _probes_and_lifecycle(ctr: dict[str, Any], grace: Any, path: str) -> Errors:
    errs: Errors = []
    lifecycle = ctr.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if lifecycle.get(hook) is not None:
                errs.extend(_handler(as_dict(lifecycle[hook]), grace, child(path, "lifecycle", hook)))
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = ctr.get(probe_name)
        if probe is None:
            continue
        probe, ppath = as_dict(probe), child(path, probe_name)
        errs.extend(_probe(probe, grace, ppath))
        success = probe.get("successThreshold")
        if probe_name != "readinessProbe" and success != 1:
            errs.append(invalid(child(ppath, "successThreshold"), success, "must be 1"))
        if probe_name == "readinessProbe" and probe.get("terminationGracePeriodSeconds") is not None:
            errs.append(invalid(child(ppath, "terminationGracePeriodSeconds"),
                                probe["terminationGracePeriodSeconds"], "must not be set for readinessProbes"))
    return errs


def _probe(probe: dict[str, Any], grace: Any, path: str) -> Errors:
    errs = _handler({k: v for k, v in probe.items() if k != "sleep"}, grace, path)
    for field in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        errs.extend(nonnegative(child(path, field), probe.get(field)))
    tgps = as_int(probe.get("terminationGracePeriodSeconds"))
    if tgps is not None and tgps <= 0:
        errs.append(invalid(child(path, "terminationGracePeriodSeconds"), tgps, "must be greater than 0"))
    return errs


def _handler(handler: dict[str, Any], grace: Any, path: str) -> Errors:
    errs: Errors = []
    count = 0
    for kind in _HANDLERS:
        if handler.get(kind) is None:
            continue
        if count:
            errs.append(forbidden(child(path, kind), "may not specify more than 1 handler type"))
            continue
        count += 1
        errs.extend(_action(kind, as_dict(handler[kind]), grace, child(path, kind)))
    if not count:
        errs.append(required(path, "must specify a handler type"))
    return errs


def _action(kind: str, action: dict[str, Any], grace: Any, path: str) -> Errors:
    if kind == "exec":
        return [] if as_list(action.get("command")) else [required(child(path, "command"))]
    if kind == "httpGet":
        errs = [] if as_str(action.get("path")) else [required(child(path, "path"))]
        errs.extend(port_num_or_name(action.get("port"), child(path, "port")))
        scheme = action.get("scheme")
        if scheme not in ("HTTP", "HTTPS"):
            errs.append(not_supported(child(path, "scheme"), scheme if scheme is not None else "", ["HTTP", "HTTPS"]))
        for header in as_list(action.get("httpHeaders")):
            name = as_str(as_dict(header).get("name"))
            errs.extend(invalid(child(path, "httpHeaders"), name, m) for m in formats.is_http_header_name(name))
        return errs
    if kind in ("tcpSocket", "grpc"):
        return port_num_or_name(action.get("port"), child(path, "port"))
    seconds, limit = as_int(action.get("seconds")) or 0, as_int(grace)
    if limit is not None and not 0 <= seconds <= limit:
        return [invalid(path, seconds, f"must be non-negative and less than terminationGracePeriodSeconds ({limit})")]
    return []


def port_num_or_name(port: Any, path: str) -> Errors:
    """``ValidatePortNumOrName`` for an int-or-string port (an absent port is 0)."""
    if isinstance(port, str):
        return [invalid(path, port, m) for m in formats.is_valid_port_name(port)]
    number = as_int(port) or 0
    return [invalid(path, number, m) for m in formats.is_valid_port_num(number)]


def validate_image_whitespace(containers: Any, path: str) -> Errors:
    """Pod-only rule (not templates): images may not be padded with whitespace."""
    errs: Errors = []
    for i, ctr in enumerate(as_list(containers)):
        image = as_str(as_dict(ctr).get("image"))
        if image != image.strip():
            errs.append(invalid(child(index(path, i), "image"), image, "must not have leading or trailing whitespace"))
    return errs


def range_check(value: Any, lo: int, hi: int, path: str) -> Errors:
    number = as_int(value)
    if number is not None and not lo <= number <= hi:
        return [invalid(path, number, inclusive_range_error(lo, hi))]
    return []
