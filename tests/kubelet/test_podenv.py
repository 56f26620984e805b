"""Container environments: envFrom, valueFrom (ConfigMaps, Secrets, downward API), $(VAR) expansion, and a
missing ConfigMap holding a container in CreateContainerConfigError on a node agent."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from kubelet_helpers import ValidatingClient, eventually, pod

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.agent import AgentSettings, NodeAgent
from nanokube.kubelet.node import NodeConfig
from nanokube.kubelet.podenv import ContainerConfigFailure, EnvResolver, PodContext, expand
from nanokube.kubelet.runtime.fake import ContainerPlan, FakeRuntime, annotation_plan
from nanokube.kubelet.runtime.interface import ContainerConfig, PodSandboxConfig
from nanokube.kubelet.sync import PodSyncer, SyncSettings

JSON = dict[str, Any]
POD: JSON = {"metadata": {"name": "p", "namespace": "default", "uid": "u-1", "labels": {"app": "web"},
                          "annotations": {"note": "hi"}},
             "spec": {"nodeName": "n1", "serviceAccountName": "sa"}}
CONTEXT = PodContext(pod_ips=("10.42.0.9",), host_ips=("192.0.2.5",), node_allocatable={"cpu": "2"})


def test_expand_follows_kubernetes_rules() -> None:
    env = {"A": "x", "B": "y"}
    assert expand("$(A)-$(B)", env) == "x-y"
    assert expand("$(C) stays", env) == "$(C) stays"
    assert expand("$$(A) $ $x $(A", env) == "$(A) $ $x $(A"


def own(env: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The container's own variables, without the ``kubernetes`` Service's link variables every Pod gets."""
    return [(k, v) for k, v in env if not k.startswith("KUBERNETES_")]


async def _with_objects(body: Any) -> Any:
    async with InProcessCluster() as cluster:
        client = cluster.client
        await client.create(cluster.resource("", "v1", "configmaps"), "default",
                            {"metadata": {"name": "cm"}, "data": {"GREETING": "hello", "who": "$(NAME)"}})
        secret = base64.b64encode(b"s3cret").decode()
        await client.create(cluster.resource("", "v1", "secrets"), "default",
                            {"metadata": {"name": "sec"}, "data": {"pw": secret}})
        return await body(EnvResolver(client))


async def test_values_come_from_every_source_in_order() -> None:
    spec = {"name": "c", "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}},
            "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}, {"secretRef": {"name": "sec"}}],
            "env": [{"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "MSG", "value": "$(CM_GREETING) $(NAME) $(LATER)"},
                    {"name": "KEY", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "GREETING"}}},
                    {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                    {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                    {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                       "divisor": "1Mi"}}},
                    {"name": "CPU_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu",
                                                                           "divisor": "1m"}}},
                    {"name": "CPU_LIM", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                    {"name": "LATER", "value": "late"}]}
    env = await _with_objects(lambda r: r.resolve(POD, spec, CONTEXT))
    assert env[:3] == [("CM_GREETING", "hello"), ("CM_who", "$(NAME)"), ("pw", "s3cret")]
    values = dict(env)
    assert values["MSG"] == "hello p $(LATER)"  # only names defined earlier expand
    assert (values["KEY"], values["PW"], values["APP"], values["NOTE"]) == ("hello", "s3cret", "web", "hi")
    assert (values["IP"], values["HOST"], values["NODE"], values["SA"]) == ("10.42.0.9", "192.0.2.5", "n1", "sa")
    assert (values["UID"], values["NS"]) == ("u-1", "default")
    assert (values["MEM"], values["CPU_REQ"], values["CPU_LIM"]) == ("64", "250", "2")


@pytest.mark.parametrize(("entry", "message"), [
    ({"configMapKeyRef": {"name": "nope", "key": "k"}}, 'configmap "nope" not found'),
    ({"secretKeyRef": {"name": "nope", "key": "k"}}, 'secret "nope" not found'),
    ({"configMapKeyRef": {"name": "cm", "key": "k"}}, "couldn't find key k in ConfigMap default/cm"),
    ({"secretKeyRef": {"name": "sec", "key": "k"}}, "couldn't find key k in Secret default/sec"),
])
async def test_a_missing_required_source_fails_with_kubes_message(entry: JSON, message: str) -> None:
    spec = {"name": "c", "env": [{"name": "X", "valueFrom": entry}]}
    with pytest.raises(ContainerConfigFailure, match=message) as caught:
        await _with_objects(lambda r: r.resolve(POD, spec, CONTEXT))
    assert caught.value.reason == "CreateContainerConfigError"


async def test_optional_sources_that_are_absent_are_left_out() -> None:
    spec = {"name": "c", "envFrom": [{"configMapRef": {"name": "nope", "optional": True}}],
            "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}},
                    {"name": "B", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "k", "optional": True}}},
                    {"name": "C", "value": "c"}]}
    assert own(await _with_objects(lambda r: r.resolve(POD, spec, CONTEXT))) == [("C", "c")]


async def test_a_missing_configmap_holds_the_container_until_it_exists() -> None:
    seen: list[ContainerConfig] = []

    def planner(sandbox: PodSandboxConfig, config: ContainerConfig) -> ContainerPlan:
        seen.append(config)
        return annotation_plan(sandbox, config)

    async with InProcessCluster() as cluster:
        client = ValidatingClient(cluster.client)
        pods, configmaps = cluster.resource("", "v1", "pods"), cluster.resource("", "v1", "configmaps")
        agent = NodeAgent(client, AgentSettings(pod_field_selector="spec.nodeName=solo", status_interval=0.1))
        runtime = FakeRuntime(planner=planner, pod_cidr="10.42.7.0/24")
        settings = SyncSettings("solo", ("192.0.2.5",), image_backoff_initial=0.1)
        agent.add_node(NodeConfig("solo", {"cpu": "2", "memory": "2Gi", "pods": "10"}, pod_cidr="10.42.7.0/24"),
                       runtime, PodSyncer(settings, runtime, agent.status, env=EnvResolver(client)))
        body = pod("envy", "solo")
        body["spec"]["containers"][0]["env"] = [
            {"name": "G", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "g"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
        body["spec"]["containers"][0]["command"] = ["serve", "--bind=$(IP)"]
        body["spec"]["containers"][0]["args"] = ["$(G)", "$$(G)", "$(UNDEFINED)"]
        await client.create(pods, "default", body)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop=stop))

        async def waiting_reason() -> JSON | None:
            found = await client.get(pods, "default", "envy")
            statuses = (found.get("status") or {}).get("containerStatuses") or []
            waiting = statuses[0]["state"].get("waiting") if statuses else None
            return waiting if waiting and waiting.get("reason") == "CreateContainerConfigError" else None

        waiting = await eventually(waiting_reason, what="CreateContainerConfigError")
        assert waiting["message"] == 'configmap "later" not found'
        await client.create(configmaps, "default", {"metadata": {"name": "later"}, "data": {"g": "hey"}})

        async def running() -> JSON | None:
            found = await client.get(pods, "default", "envy")
            statuses = (found.get("status") or {}).get("containerStatuses") or []
            return found if statuses and "running" in statuses[0]["state"] else None

        found = await eventually(running, what="the container running once the ConfigMap exists")
        env = dict(own(seen[-1].envs))
        assert env == {"G": "hey", "IP": found["status"]["podIP"]}
        # command and args are expanded against the container's environment
        assert seen[-1].command == ["serve", f"--bind={found['status']['podIP']}"]
        assert seen[-1].args == ["hey", "$(G)", "$(UNDEFINED)"]
        stop.set()
        await task


async def test_an_unset_limit_is_the_nodes_allocatable() -> None:
    spec = {"name": "c", "env": [{"name": "M", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                                  "divisor": "1Mi"}}}]}

    async def resolve(resolver: EnvResolver) -> list[tuple[str, str]]:
        node = EnvResolver(resolver.client, node_allocatable={"memory": "2Gi"})
        return await node.resolve(POD, spec, PodContext())

    assert own(await _with_objects(resolve)) == [("M", "2048")]


async def test_service_links_come_last_and_the_containers_own_win() -> None:
    async with InProcessCluster() as cluster:
        services = cluster.resource("", "v1", "services")
        await cluster.client.create(services, "default", {"metadata": {"name": "my-db"}, "spec": {
            "ports": [{"name": "sql", "port": 5432}, {"name": "metrics", "port": 9100, "protocol": "UDP"}]}})
        await cluster.client.create(services, "default", {"metadata": {"name": "headless"}, "spec": {
            "clusterIP": "None", "ports": [{"port": 80}]}})
        db = await cluster.client.get(services, "default", "my-db")
        spec = {"name": "c", "env": [{"name": "MY_DB_SERVICE_PORT", "value": "mine"},
                                     {"name": "URL", "value": "$(MY_DB_SERVICE_HOST):$(MY_DB_SERVICE_PORT_SQL)"}]}
        env = await EnvResolver(cluster.client).resolve(POD, spec, CONTEXT)
        values, ip = dict(env), db["spec"]["clusterIP"]
        assert env[:2] == [("MY_DB_SERVICE_PORT", "mine"), ("URL", f"{ip}:5432")]
        assert values["MY_DB_SERVICE_HOST"] == ip and values["MY_DB_SERVICE_PORT_METRICS"] == "9100"
        assert values["MY_DB_PORT"] == f"tcp://{ip}:5432"
        assert values["MY_DB_PORT_9100_UDP"] == f"udp://{ip}:9100" and values["MY_DB_PORT_9100_UDP_PROTO"] == "udp"
        assert (values["MY_DB_PORT_5432_TCP_PORT"], values["MY_DB_PORT_5432_TCP_ADDR"]) == ("5432", ip)
        assert values["KUBERNETES_SERVICE_HOST"] == "10.43.0.1" and values["KUBERNETES_SERVICE_PORT"] == "443"
        assert not any(k.startswith("HEADLESS_") for k in values)
        # enableServiceLinks: false keeps only the kubernetes Service's variables
        quiet = {**POD, "spec": {**POD["spec"], "enableServiceLinks": False}}
        names = {k for k, _ in await EnvResolver(cluster.client).resolve(quiet, {"name": "c"}, CONTEXT)}
        assert names and all(k.startswith("KUBERNETES_") for k in names)
