"""Pod requests as kube's resource.PodRequests counts them, scoring's non-zero defaults, host ports."""

from __future__ import annotations

from nanokube.scheduler.resources import (
    DEFAULT_MEMORY,
    DEFAULT_MILLI_CPU,
    host_ports,
    nonzero_cpu_memory,
    pod_requests,
    ports_conflict,
)


def ctr(cpu: str | None = None, memory: str | None = None, **extra: object) -> dict[str, object]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": "c", "image": "x", "resources": {"requests": requests}, **extra}


def test_containers_add_up_and_init_containers_take_the_max() -> None:
    spec = {"containers": [ctr("2", "1G"), ctr("1", "1G")],
            "initContainers": [ctr("2", "1G"), ctr("2", "3G")]}
    assert pod_requests(spec) == {"cpu": 3000, "memory": 3 * 10**9}


def test_sidecars_run_beside_containers_and_before_later_init_containers() -> None:
    # KEP-753: sidecar 500m runs with the containers (1 + 0.5); the init container after it needs 2 + 0.5.
    spec = {"containers": [ctr("1")],
            "initContainers": [ctr("500m", restartPolicy="Always"), ctr("2")]}
    assert pod_requests(spec)["cpu"] == 2500
    spec["initContainers"] = [ctr("2"), ctr("500m", restartPolicy="Always")]
    assert pod_requests(spec)["cpu"] == 2000  # the init container ran before the sidecar started


def test_overhead_is_added_and_pod_level_requests_replace_container_totals() -> None:
    spec = {"containers": [ctr("1", "1Gi")], "overhead": {"cpu": "250m", "memory": "64Mi"}}
    assert pod_requests(spec) == {"cpu": 1250, "memory": (1024 + 64) * 2**20}
    spec["resources"] = {"requests": {"cpu": "3"}}
    assert pod_requests(spec)["cpu"] == 3250


def test_extended_and_hugepages_are_counted_and_odd_names_are_not() -> None:
    spec = {"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": "2", "hugepages-2Mi": "4Mi",
                                                                      "weird": "1"}}}]}
    assert pod_requests(spec) == {"example.com/gpu": 2, "hugepages-2Mi": 4 * 2**20}


def test_cpu_rounds_up_to_millicores() -> None:
    assert pod_requests({"containers": [ctr("0.0001")]})["cpu"] == 1


def test_nonzero_defaults_fill_only_missing_requests() -> None:
    spec = {"containers": [ctr(), ctr("0", None), ctr("300m", "1Mi")]}
    requests = pod_requests(spec)
    cpu, memory = nonzero_cpu_memory(spec, requests)
    assert cpu == DEFAULT_MILLI_CPU + 0 + 300  # an explicit 0 stays 0
    assert memory == DEFAULT_MEMORY * 2 + 2**20


def test_host_ports_and_conflicts() -> None:
    spec = {"containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080},
                                                   {"containerPort": 53, "protocol": "UDP", "hostPort": 53,
                                                    "hostIP": "10.0.0.1"},
                                                   {"containerPort": 9000}]}]}
    ports = host_ports(spec)
    assert ports == (("0.0.0.0", "TCP", 8080), ("10.0.0.1", "UDP", 53))
    assert ports_conflict([("0.0.0.0", "TCP", 8080)], {("127.0.0.1", "TCP", 8080): 1})
    assert ports_conflict([("10.0.0.2", "TCP", 8080)], {("0.0.0.0", "TCP", 8080): 1})
    assert not ports_conflict([("10.0.0.2", "TCP", 8080)], {("10.0.0.1", "TCP", 8080): 1})
    assert not ports_conflict([("0.0.0.0", "UDP", 8080)], {("0.0.0.0", "TCP", 8080): 1})
