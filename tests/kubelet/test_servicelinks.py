"""Which Services' link variables a Pod gets."""

from __future__ import annotations

from typing import Any

from nanokube.kubelet.servicelinks import service_env, visible_services


def svc(ns: str, name: str, ip: str = "10.43.0.5") -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name}, "spec": {"clusterIP": ip, "ports": [{"port": 80}]}}


def pod(ns: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": "p"}, "spec": spec}


def test_the_pods_namespace_and_the_kubernetes_service() -> None:
    services = [svc("default", "kubernetes", "10.43.0.1"), svc("default", "web"), svc("shop", "web", "10.43.0.7"),
                svc("shop", "kubernetes", "10.43.0.9"), svc("shop", "none", "None")]
    chosen = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in visible_services(pod("shop"), services)}
    assert chosen == {("default", "kubernetes"), ("shop", "web")}
    env = service_env(visible_services(pod("shop"), services))
    assert env["KUBERNETES_SERVICE_HOST"] == "10.43.0.1" and env["WEB_SERVICE_HOST"] == "10.43.0.7"
    off = visible_services(pod("shop", enableServiceLinks=False), services)
    assert [s["metadata"]["name"] for s in off] == ["kubernetes"]
