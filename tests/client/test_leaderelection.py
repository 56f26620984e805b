from __future__ import annotations

import asyncio

from nanokube.client.leaderelection import LeaderElector, LeaseSettings
from nanokube.cmd.inprocess import InProcessCluster


async def test_one_leader_at_a_time_and_failover() -> None:
    async with InProcessCluster() as cluster:
        leading: list[str] = []
        stops = {name: asyncio.Event() for name in ("a", "b")}

        def elector(name: str) -> LeaderElector:
            return LeaderElector(cluster.client, LeaseSettings("test-lock", name, lease_duration=2,
                                                               renew_deadline=1, retry_period=0.1))

        async def lead_as(name: str, done: asyncio.Event) -> None:
            leading.append(name)
            await done.wait()
            leading.remove(name)

        electors = {name: elector(name) for name in stops}
        tasks = {name: asyncio.create_task(e.run(lambda done, n=name: lead_as(n, done), stop=stops[name]))
                 for name, e in electors.items()}
        for _ in range(100):
            if leading:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert len(leading) == 1
        first = leading[0]
        other = "b" if first == "a" else "a"
        stops[first].set()  # a clean stop releases the lease; the other takes over
        await tasks[first]
        for _ in range(100):
            if leading == [other]:
                break
            await asyncio.sleep(0.05)
        assert leading == [other]
        lease = await cluster.client.get(cluster.resource("coordination.k8s.io", "v1", "leases"), "kube-system",
                                         "test-lock")
        assert lease["spec"]["holderIdentity"] == other
        assert lease["spec"]["leaseTransitions"] >= 1
        stops[other].set()
        await tasks[other]
