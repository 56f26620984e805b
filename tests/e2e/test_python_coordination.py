"""The Python client's leader election (``kubernetes.leaderelection`` with a ``LeaseLock``) against
``nanokube up``: one candidate leads at a time, and another takes over once the leader stops renewing.

``LeaseLock`` builds its API object from the client's default configuration, so the test points the default at
the cluster for its duration and puts the old default back afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from kubernetes import client, config
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from .cluster import Cluster, unique


@pytest.fixture
def default_client(cluster: Cluster) -> Iterator[client.ApiClient]:
    old = client.Configuration.get_default()
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
    client.Configuration.set_default(configuration)
    try:
        with client.ApiClient(configuration) as api:
            yield api
    finally:
        client.Configuration.set_default(old)


class Candidate:
    """One participant: leads until ``step_down`` is set, then stops renewing (its callback raises)."""

    def __init__(self, identity: str, lease: str, namespace: str) -> None:
        self.identity = identity
        self.leading = threading.Event()
        self.stopped = threading.Event()
        self.step_down = threading.Event()
        election = electionconfig.Config(LeaseLock(lease, namespace, identity), lease_duration=3, renew_deadline=2,
                                         retry_period=1, onstarted_leading=self._lead,
                                         onstopped_leading=self.stopped.set)
        self.thread = threading.Thread(target=leaderelection.LeaderElection(election).run, daemon=True)

    def _lead(self) -> None:
        self.leading.set()
        self.step_down.wait()
        raise RuntimeError(f"{self.identity} steps down")


def test_leader_election_with_a_lease(default_client: client.ApiClient, namespace: str) -> None:
    lease = unique("leader")
    first = Candidate("first", lease, namespace)
    second = Candidate("second", lease, namespace)
    first.thread.start()
    try:
        assert first.leading.wait(10), "the first candidate never led"
        second.thread.start()
        # While the first renews, the second only follows.
        assert not second.leading.wait(2)
        held = client.CoordinationV1Api(default_client).read_namespaced_lease(lease, namespace)
        assert held.spec is not None and held.spec.holder_identity == "first"
        assert held.spec.lease_duration_seconds == 3
        first.step_down.set()
        assert first.stopped.wait(10), "the first candidate never stopped"
        assert second.leading.wait(15), "the second candidate never took over"
        taken = client.CoordinationV1Api(default_client).read_namespaced_lease(lease, namespace)
        assert taken.spec is not None and taken.spec.holder_identity == "second"
        assert taken.spec.renew_time is not None and held.spec.renew_time is not None
        assert taken.spec.renew_time > held.spec.renew_time
    finally:
        first.step_down.set()
        second.step_down.set()
    assert second.stopped.wait(10)
