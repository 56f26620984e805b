"""Deployment history and control: rollback (as ``kubectl rollout undo`` does it), revision history limit,
change-cause, pause/resume, restart, adoption, and the progress deadline."""

from __future__ import annotations

import asyncio

from test_deployment import cluster_with_controllers, rolled_out, set_image
from test_deployment_helpers import (
    NS,
    Kube,
    condition,
    deployment_manifest,
    eventually,
    rollout_status,
    template,
)

from nanokube.api.objects import deep_copy

JSON = dict
SKIP = {"kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision",
        "deployment.kubernetes.io/revision-history", "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas", "deprecated.deployment.rollback.to"}


async def owned_rses(kube: Kube, name: str = "web") -> list[JSON]:
    d = await kube.get("deployments", name)
    return [r for r in await kube.list_rs("app=web")
            if any(ref["uid"] == d["metadata"]["uid"] for ref in r["metadata"].get("ownerReferences") or [])]


async def undo(kube: Kube, to_revision: int = 0, name: str = "web") -> str:
    """``kubectl rollout undo``: patch the Deployment's template back to a ReplicaSet's, client side."""
    d = await kube.get("deployments", name)
    by_revision = {int(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]): r
                   for r in await owned_rses(kube, name)}
    wanted = by_revision[to_revision] if to_revision else by_revision[sorted(by_revision)[-2]]
    if d["spec"].get("paused"):
        return "you cannot rollback a paused deployment"
    tmpl = deep_copy(wanted["spec"]["template"])
    del tmpl["metadata"]["labels"]["pod-template-hash"]
    annotations = {k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k in SKIP}
    annotations.update({k: v for k, v in wanted["metadata"]["annotations"].items() if k not in SKIP})
    await kube.client.patch(kube.deployments, NS, name, [
        {"op": "replace", "path": "/spec/template", "value": tmpl},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations}], patch_type="json")
    return "rolled back"


async def done_at(kube: Kube, generation: int, name: str = "web") -> JSON | None:
    d = await rolled_out(kube, name)
    return d if d and d["metadata"]["generation"] >= generation else None


def revisions(rses: list[JSON]) -> dict[str, str]:
    return {r["spec"]["template"]["spec"]["containers"][0]["image"]:
            r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for r in rses}


async def test_undo_reuses_the_old_replicaset_with_a_new_revision() -> None:
    async with cluster_with_controllers() as kube:
        manifest = deployment_manifest("web", 2)
        manifest["metadata"]["annotations"] = {"kubernetes.io/change-cause": "first"}
        await kube.client.create(kube.deployments, NS, manifest)
        await eventually(lambda: done_at(kube, 1))
        await kube.client.patch(kube.deployments, NS, "web", {
            "metadata": {"annotations": {"kubernetes.io/change-cause": "second"}},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]}}}},
            patch_type="strategic")
        await eventually(lambda: done_at(kube, 2))
        before = {r["metadata"]["name"] for r in await owned_rses(kube)}
        assert revisions(await owned_rses(kube)) == {"nginx:1.25": "1", "nginx:1.26": "2"}
        changes = {r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]:
                   r["metadata"]["annotations"].get("kubernetes.io/change-cause") for r in await owned_rses(kube)}
        assert changes == {"1": "first", "2": "second"}  # what `kubectl rollout history` prints

        assert await undo(kube) == "rolled back"
        d = await eventually(lambda: done_at(kube, 3))
        rses = await owned_rses(kube)
        assert {r["metadata"]["name"] for r in rses} == before, "undo must not make a new ReplicaSet"
        assert revisions(rses) == {"nginx:1.25": "3", "nginx:1.26": "2"}
        back = next(r for r in rses if r["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25")
        assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
        assert back["spec"]["replicas"] == 2
        d = await eventually(lambda: _revision_is(kube, "3"))
        assert d["metadata"]["annotations"]["kubernetes.io/change-cause"] == "first"

        assert await undo(kube, to_revision=2) == "rolled back"
        await eventually(lambda: _revision_is(kube, "4"))
        await eventually(lambda: done_at(kube, 4))
        assert revisions(await owned_rses(kube)) == {"nginx:1.25": "3", "nginx:1.26": "4"}


async def _revision_is(kube: Kube, revision: str) -> JSON | None:
    d = await kube.get("deployments", "web")
    return d if d["metadata"]["annotations"].get("deployment.kubernetes.io/revision") == revision else None


async def test_revision_history_limit_deletes_the_oldest_replicasets() -> None:
    async with cluster_with_controllers() as kube:
        await kube.client.create(kube.deployments, NS, deployment_manifest("web", 1, revisionHistoryLimit=1))
        await eventually(lambda: done_at(kube, 1))
        for generation, image in enumerate(("nginx:1.26", "nginx:1.27", "nginx:1.28"), start=2):
            await set_image(kube, image)
            await eventually(lambda g=generation: done_at(kube, g))  # type: ignore[misc]

        async def two_left() -> list[JSON] | None:
            rses = await owned_rses(kube)
            return rses if len(rses) == 2 else None

        rses = await eventually(two_left, what="history trimmed to one old ReplicaSet")
        assert revisions(rses) == {"nginx:1.27": "3", "nginx:1.28": "4"}


async def test_pause_holds_the_template_and_resume_rolls_it_out() -> None:
    async with cluster_with_controllers() as kube:
        await kube.client.create(kube.deployments, NS, deployment_manifest("web", 2))
        await eventually(lambda: done_at(kube, 1))
        await kube.client.patch(kube.deployments, NS, "web", {"spec": {"paused": True}})  # kubectl rollout pause

        async def paused() -> JSON | None:
            d = await kube.get("deployments", "web")
            cond = condition(d, "Progressing")
            return d if cond and (cond["status"], cond["reason"], cond["message"]) == (
                "Unknown", "DeploymentPaused", "Deployment is paused") else None

        await eventually(paused)
        await set_image(kube, "nginx:1.26")
        await kube.client.patch(kube.deployments, NS, "web", {"spec": {"replicas": 3}})
        # Scaling still happens while paused; the new template waits.
        await eventually(lambda: _observed_with_replicas(kube, 4, 3))
        await asyncio.sleep(0.2)
        assert len(await owned_rses(kube)) == 1
        await kube.client.patch(kube.deployments, NS, "web", {"spec": {"paused": False}})
        d = await eventually(lambda: done_at(kube, 5))
        assert revisions(await owned_rses(kube)) == {"nginx:1.25": "1", "nginx:1.26": "2"}
        cond = condition(d, "Progressing")
        assert cond and cond["reason"] == "NewReplicaSetAvailable"


async def _observed_with_replicas(kube: Kube, generation: int, replicas: int) -> bool:
    await kube.mark_ready()
    d = await kube.get("deployments", "web")
    rses = await owned_rses(kube)
    return (d["status"].get("observedGeneration") == generation and len(rses) == 1
            and rses[0]["spec"]["replicas"] == replicas)


async def test_restart_makes_a_new_replicaset() -> None:
    async with cluster_with_controllers() as kube:
        await kube.client.create(kube.deployments, NS, deployment_manifest("web", 2))
        await eventually(lambda: done_at(kube, 1))
        # kubectl rollout restart
        await kube.client.patch(kube.deployments, NS, "web", {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}}, patch_type="strategic")
        await eventually(lambda: done_at(kube, 2))
        rses = await owned_rses(kube)
        assert len(rses) == 2
        new = next(r for r in rses if r["spec"]["replicas"] == 2)
        assert new["spec"]["template"]["metadata"]["annotations"] == {
            "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
        pods = await kube.list_pods("app=web")
        assert len(pods) == 2 and all(p["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] for p in pods)


async def test_progress_deadline_exceeded() -> None:
    async with cluster_with_controllers() as kube:
        await kube.client.create(kube.deployments, NS, deployment_manifest("web", 2, progressDeadlineSeconds=1))

        async def timed_out() -> JSON | None:
            d = await kube.get("deployments", "web")  # no kubelet: the pods never become ready
            cond = condition(d, "Progressing")
            return d if cond and cond["reason"] == "ProgressDeadlineExceeded" else None

        d = await eventually(timed_out, timeout=15, what="ProgressDeadlineExceeded")
        (rs,) = await owned_rses(kube)
        cond = condition(d, "Progressing")
        assert cond and (cond["status"], cond["message"]) == (
            "False", f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.')
        available = condition(d, "Available")
        assert available and (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")
        try:
            rollout_status(d)
        except RuntimeError as err:
            assert str(err) == 'deployment "web" exceeded its progress deadline'
        else:
            raise AssertionError("kubectl rollout status would not fail")


async def test_adopts_a_matching_orphan_replicaset_as_its_new_one() -> None:
    async with cluster_with_controllers() as kube:
        await kube.client.create(kube.replicasets, NS, {
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "legacy", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template()}})
        await kube.client.create(kube.deployments, NS, deployment_manifest("web", 2))
        d = await eventually(lambda: done_at(kube, 1))
        (rs,) = await owned_rses(kube)
        assert rs["metadata"]["name"] == "legacy"
        assert rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
