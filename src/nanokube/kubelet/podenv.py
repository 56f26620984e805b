"""A container's environment as the kubelet computes it: envFrom, env values, valueFrom, ``$(VAR)`` expansion.

``EnvResolver.resolve`` turns a container spec into the ``(name, value)`` list the runtime gets, reading
ConfigMaps and Secrets through the client at container-creation time (as the kubelet does: a later change
to a ConfigMap reaches only containers started after it). Order and precedence follow the kubelet's
``makeEnvironmentVariables``: ``envFrom`` sources first (``prefix`` prepended, later sources win), then
``env`` entries in order, each value expanded against the variables defined before it; a name defined twice
keeps its first position and its last value.

A required ConfigMap, Secret or key that is missing raises ``ContainerConfigFailure`` (the waiting reason
``CreateContainerConfigError``) with the kubelet's message, e.g. ``configmap "x" not found``; the pod syncer
reports it and tries again later. Service link variables (servicelinks.py) come last, for every name the
container does not define itself, and ``$(VAR)`` may refer to them.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from nanokube.api.errors import NotFound
from nanokube.api.quantity import milli_value, value
from nanokube.client.interface import Client

from .runtime.interface import RuntimeFailure
from .servicelinks import MASTER_NAMESPACE, MASTER_SERVICE, service_env, visible_services

JSON = dict[str, Any]


class ContainerConfigFailure(RuntimeFailure):
    """The container's configuration cannot be made (a missing ConfigMap, Secret or key)."""

    reason = "CreateContainerConfigError"


@dataclass
class PodContext:
    """What the downward API needs beyond the Pod object: the node's view of the Pod's addresses."""

    pod_ips: Sequence[str] = ()
    host_ips: Sequence[str] = ()
    node_allocatable: Mapping[str, str] = field(default_factory=dict)  # default for unset limits


def expand(text: str, mapping: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined names are replaced, undefined ones kept as written, ``$$``
    becomes ``$`` and any other ``$`` stays as it is."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end == -1:  # unterminated: kept as written
                out.append(text[i:])
                break
            name = text[i + 2:end]
            out.append(mapping[name] if name in mapping else text[i:end + 1])
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


class EnvResolver:
    def __init__(self, client: Client, *, node_allocatable: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.node_allocatable = dict(node_allocatable or {})  # used when the context gives none
        self._configmaps = client.registry.get("", "v1", "configmaps")
        self._secrets = client.registry.get("", "v1", "secrets")
        self._services = client.registry.get("", "v1", "services")

    async def resolve(self, pod: JSON, spec: JSON, context: PodContext) -> list[tuple[str, str]]:
        """The container's environment in order; raises ``ContainerConfigFailure`` as described above."""
        namespace = pod["metadata"].get("namespace", "")
        if not context.node_allocatable:
            context = replace(context, node_allocatable=self.node_allocatable)
        links = service_env(visible_services(pod, await self._service_list(namespace)))
        env: dict[str, str] = {}
        for source in spec.get("envFrom") or []:
            env.update(await self._env_from(namespace, source))
        for var in spec.get("env") or []:
            name = var["name"]
            if "valueFrom" in var:
                found = await self._value_from(pod, spec, var["valueFrom"], context)
                if found is None:
                    continue  # an optional source that is absent: the variable is left out
                env[name] = found
            else:
                env[name] = expand(str(var.get("value", "")), {**links, **env})
        return [*env.items(), *((k, v) for k, v in links.items() if k not in env)]

    async def _service_list(self, namespace: str) -> list[JSON]:
        """The Services of the Pod's namespace and ``default`` (for the ``kubernetes`` Service)."""
        assert self._services is not None
        found = list((await self.client.list(self._services, namespace)).items)
        if namespace != MASTER_NAMESPACE:
            try:
                found.append(await self.client.get(self._services, MASTER_NAMESPACE, MASTER_SERVICE))
            except NotFound:
                pass
        return found

    # -- ConfigMaps and Secrets -------------------------------------------------------------------------
    async def _data(self, kind: str, namespace: str, name: str, optional: bool) -> dict[str, str] | None:
        """The object's data as text (Secrets decoded); None when it is optional and absent."""
        resource = self._configmaps if kind == "ConfigMap" else self._secrets
        assert resource is not None
        try:
            obj = await self.client.get(resource, namespace, name)
        except NotFound:
            if optional:
                return None
            raise ContainerConfigFailure(f'{kind.lower()} "{name}" not found') from None
        data = obj.get("data") or {}
        if kind == "ConfigMap":
            return {k: str(v) for k, v in data.items()}
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}

    async def _env_from(self, namespace: str, source: JSON) -> dict[str, str]:
        prefix = source.get("prefix", "")
        for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = source.get(key)
            if ref is None:
                continue
            data = await self._data(kind, namespace, ref.get("name", ""), bool(ref.get("optional")))
            # Keys that cannot be variable names are skipped (the kubelet records an event for them).
            return {prefix + k: v for k, v in (data or {}).items() if "=" not in prefix + k}
        return {}

    async def _key(self, kind: str, namespace: str, ref: JSON) -> str | None:
        optional = bool(ref.get("optional"))
        name, key = ref.get("name", ""), ref["key"]
        data = await self._data(kind, namespace, name, optional)
        if data is None:
            return None
        if key not in data:
            if optional:
                return None
            raise ContainerConfigFailure(f"couldn't find key {key} in {kind} {namespace}/{name}")
        return data[key]

    async def _value_from(self, pod: JSON, spec: JSON, source: JSON, context: PodContext) -> str | None:
        namespace = pod["metadata"].get("namespace", "")
        if "configMapKeyRef" in source:
            return await self._key("ConfigMap", namespace, source["configMapKeyRef"])
        if "secretKeyRef" in source:
            return await self._key("Secret", namespace, source["secretKeyRef"])
        if "fieldRef" in source:
            return field_value(pod, source["fieldRef"]["fieldPath"], context)
        if "resourceFieldRef" in source:
            return resource_value(spec, source["resourceFieldRef"], context)
        return ""


# -- downward API ---------------------------------------------------------------------------------------
def field_value(pod: JSON, path: str, context: PodContext) -> str:
    """The value of a ``fieldRef`` path for this Pod (the paths the API server accepts for env)."""
    meta, spec = pod["metadata"], pod["spec"]
    for prefix, source in (("metadata.labels", meta.get("labels")),
                           ("metadata.annotations", meta.get("annotations"))):
        if path.startswith(prefix + "['") and path.endswith("']"):
            return str((source or {}).get(path[len(prefix) + 2:-2], ""))
        if path == prefix:
            return "\n".join(f'{k}="{v}"' for k, v in sorted((source or {}).items()))
    simple = {
        "metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": context.pod_ips[0] if context.pod_ips else "",
        "status.podIPs": ",".join(context.pod_ips),
        "status.hostIP": context.host_ips[0] if context.host_ips else "",
        "status.hostIPs": ",".join(context.host_ips),
    }
    if path not in simple:
        raise ContainerConfigFailure(f'unsupported fieldPath: "{path}"')
    return str(simple[path])


def resource_value(spec: JSON, ref: JSON, context: PodContext) -> str:
    """A ``resourceFieldRef``: the container's limit or request in units of ``divisor``, rounded up; an
    unset limit is the node's allocatable, an unset request 0 (the kubelet's rules)."""
    resource = ref["resource"]
    kind, _, name = resource.partition(".")
    amounts = (spec.get("resources") or {}).get(kind) or {}
    amount = amounts.get(name)
    if amount is None and kind == "limits":
        amount = context.node_allocatable.get(name)
    amount = amount if amount is not None else "0"
    divisor = str(ref.get("divisor") or "1")
    if name == "cpu":
        return str(math.ceil(milli_value(amount) / max(milli_value(divisor), 1)))
    return str(math.ceil(value(amount) / max(value(divisor), 1)))
