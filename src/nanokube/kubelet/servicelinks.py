"""Service link variables: the environment the kubelet gives every container about the cluster's Services.

For each Service a Pod may see (those of its namespace when ``enableServiceLinks`` is on, the default, and the
``kubernetes`` Service of ``default`` always, which is what ``load_incluster_config()`` reads), the kubelet sets
``<NAME>_SERVICE_HOST``/``_SERVICE_PORT`` (and ``_SERVICE_PORT_<PORTNAME>`` per named port) and the Docker-link
style ``<NAME>_PORT``, ``<NAME>_PORT_<port>_<PROTO>`` with its ``_PROTO``, ``_PORT`` and ``_ADDR``. Names are
upper-cased with ``-`` as ``_``. Services without a cluster IP (headless, ExternalName) give none. A variable the
container defines itself wins (see ``EnvResolver.resolve``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

JSON = dict[str, Any]
MASTER_NAMESPACE = "default"
MASTER_SERVICE = "kubernetes"


def visible_services(pod: JSON, services: Iterable[JSON]) -> list[JSON]:
    """The Services whose variables the Pod gets, one per name; the Pod's own namespace wins a name clash
    except for the ``kubernetes`` Service, which always comes from ``default``."""
    namespace = pod["metadata"].get("namespace", "")
    links = (pod.get("spec") or {}).get("enableServiceLinks", True) is not False
    chosen: dict[str, JSON] = {}
    for svc in services:
        meta, spec = svc["metadata"], svc.get("spec") or {}
        if spec.get("clusterIP") in (None, "", "None"):
            continue
        name, ns = meta["name"], meta.get("namespace", "")
        if ns == MASTER_NAMESPACE and name == MASTER_SERVICE:
            chosen[name] = svc
        elif links and ns == namespace and not (name == MASTER_SERVICE and name in chosen):
            chosen.setdefault(name, svc)
    return list(chosen.values())


def service_env(services: Iterable[JSON]) -> dict[str, str]:
    """The link variables of ``services`` (already chosen by ``visible_services``)."""
    env: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ports = spec.get("ports") or []
        if not ports:
            continue
        prefix = _env_name(svc["metadata"]["name"])
        host = str(spec["clusterIP"])
        env[f"{prefix}_SERVICE_HOST"] = host
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port["port"])
        first_proto = str(ports[0].get("protocol") or "TCP").lower()
        env[f"{prefix}_PORT"] = f"{first_proto}://{host}:{ports[0]['port']}"
        for port in ports:
            proto = str(port.get("protocol") or "TCP")
            base = f"{prefix}_PORT_{port['port']}_{proto.upper()}"
            env[base] = f"{proto.lower()}://{host}:{port['port']}"
            env[f"{base}_PROTO"] = proto.lower()
            env[f"{base}_PORT"] = str(port["port"])
            env[f"{base}_ADDR"] = host
    return env


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")
