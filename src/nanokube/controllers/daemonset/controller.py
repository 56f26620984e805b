"""The DaemonSet controller: one pod of the template on every node that should run it.

Keys are ``namespace/name`` of DaemonSets. Informers on DaemonSets, ControllerRevisions, pods and nodes only
enqueue: a node added, relabelled or (un)tainted wakes the DaemonSets whose verdict for it changed; a pod or
revision wakes its owner (orphans wake every DaemonSet that could adopt them). A sync then, as kube's
``syncDaemonSet``: builds the revision history, creates the pods nodes lack and deletes those they should not
have (``pods.node_plan``), takes one rolling-update step once its earlier writes have been seen
(``update.rolling_update``), prunes old revisions, and writes ``status``. Pods are created unbound, pinned by node
affinity, for the scheduler to bind; the scheduler, not this controller, checks resources.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable

from nanokube.api.errors import ApiError, Conflict, NotFound
from nanokube.api.labels import Selector, selector_from_label_selector
from nanokube.api.objects import deep_copy
from nanokube.api.registry import Resource
from nanokube.client.events import EventRecorder
from nanokube.client.informer import Informer, object_key
from nanokube.client.interface import JSON, Client
from nanokube.util.timeutil import now as utcnow

from ..base import Controller
from ..replicaset import OwnerIndex, claim, controller_ref, is_pod_ready, slow_start_batch
from ..replicaset.pods import is_pod_terminal
from . import status as ds_status
from .history import HASH_LABEL, History, template_generation
from .placement import daemon_pod_spec, node_should_run, target_node
from .pods import Backoff, Expectations, new_pod, node_plan, owner_reference
from .update import allows_surge, rolling_update

log = logging.getLogger(__name__)
BURST_REPLICAS = 250


class DaemonSetController(Controller):
    name = "daemonset"
    workers = 2

    def __init__(self, client: Client, *, burst_replicas: int = BURST_REPLICAS,
                 failed_pod_backoff: Backoff | None = None) -> None:
        super().__init__(client)
        self.burst_replicas = burst_replicas
        self.expectations = Expectations()
        self.backoff = failed_pod_backoff or Backoff()
        self._specs: dict[tuple[str, str], JSON] = {}  # (uid, resourceVersion) -> daemon pod spec
        self.recorder = EventRecorder(client, "daemonset-controller")
        self.ds_res = self._resource("apps", "v1", "daemonsets")
        self.rev_res = self._resource("apps", "v1", "controllerrevisions")
        self.pods_res = self._resource("", "v1", "pods")
        self.history = History(client, self.rev_res, self.ds_res, self.pods_res)
        self.daemonsets = self.informer(Informer(client, self.ds_res))
        self.daemonsets.add_handler(self._on_daemonset)
        self.revisions = self.informer(Informer(client, self.rev_res))
        self.revision_index = OwnerIndex()
        self.revisions.add_handler(self.revision_index.on_event)
        self.revisions.add_handler(self._on_owned(counts_expectations=False))
        self.pods = self.informer(Informer(client, self.pods_res))
        self.pod_index = OwnerIndex()
        self.pods.add_handler(self.pod_index.on_event)
        self.pods.add_handler(self._on_owned(counts_expectations=True))
        self.nodes = self.informer(Informer(client, self._resource("", "v1", "nodes")))
        self.nodes.add_handler(self._on_node)

    def _resource(self, group: str, version: str, plural: str) -> Resource:
        found = self.client.registry.get(group, version, plural)
        assert found is not None, f"{group}/{version}/{plural} is not served"
        return found

    # -- informer events ---------------------------------------------------------------------------------
    def _on_daemonset(self, kind: str, ds: JSON, old: JSON | None) -> None:
        key = object_key(ds)
        if kind == "DELETED" or (old is not None and old["metadata"].get("uid") != ds["metadata"].get("uid")):
            self.expectations.forget(key)  # a DaemonSet made again under this name starts clean
        self.queue.add(key)

    def _owner_key(self, obj: JSON, ref: JSON | None) -> str | None:
        """The key of the cached DaemonSet ``ref`` names (same uid), if any."""
        if ref is None or ref.get("kind") != "DaemonSet" or not str(ref.get("apiVersion", "")).startswith("apps/"):
            return None
        key = f"{obj['metadata'].get('namespace', '')}/{ref.get('name', '')}"
        ds = self.daemonsets.get(key)
        return key if ds is not None and ds["metadata"].get("uid") == ref.get("uid") else None

    def _enqueue_adopters(self, obj: JSON) -> None:
        labels = obj["metadata"].get("labels") or {}
        namespace = obj["metadata"].get("namespace", "")
        for ds in self.daemonsets.items():
            if ds["metadata"].get("namespace", "") != namespace:
                continue
            try:
                if selector_from_label_selector((ds.get("spec") or {}).get("selector")).matches(labels):
                    self.queue.add(object_key(ds))
            except ValueError:
                continue

    def _on_owned(self, *, counts_expectations: bool) -> Callable[[str, JSON, JSON | None], None]:
        """Pod and revision events (kube's add/update/delete Pod and History handlers)."""
        def gone(obj: JSON) -> None:
            owner = self._owner_key(obj, controller_ref(obj))
            if owner is not None:
                if counts_expectations:
                    self.expectations.deletion_observed(owner, object_key(obj))
                self.queue.add(owner)

        def handle(kind: str, obj: JSON, old: JSON | None) -> None:
            if kind == "DELETED" or obj["metadata"].get("deletionTimestamp"):
                gone(obj)
                return
            if old is not None and old["metadata"].get("resourceVersion") == obj["metadata"].get("resourceVersion"):
                return
            ref = controller_ref(obj)
            old_ref = controller_ref(old) if old is not None else None
            if old is not None and old_ref is not None and old_ref != ref:
                previous = self._owner_key(old, old_ref)
                if previous is not None:
                    self.queue.add(previous)
            owner = self._owner_key(obj, ref)
            if owner is not None:
                if kind == "ADDED" and counts_expectations:
                    self.expectations.creation_observed(owner)
                self.queue.add(owner)
                if counts_expectations and old is not None:
                    self._recheck_when_available(owner, obj, old)
            elif ref is None and (old is None or old_ref is not None
                                  or (old["metadata"].get("labels") or {}) != (obj["metadata"].get("labels") or {})):
                self._enqueue_adopters(obj)
        return handle

    def _recheck_when_available(self, key: str, pod: JSON, old: JSON) -> None:
        ds = self.daemonsets.get(key) or {}
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready and is_pod_ready(pod) and not is_pod_ready(old):
            self.queue.add_after(key, min_ready + 1)

    def _on_node(self, kind: str, node: JSON, old: JSON | None) -> None:
        if kind == "DELETED":
            for ds in self.daemonsets.items():
                self.queue.add(object_key(ds))
            return
        if old is not None and _placement_facts(old) == _placement_facts(node):
            return  # heartbeats and status changes do not move daemon pods
        for ds in self.daemonsets.items():
            spec = self._pod_spec(ds)
            verdict = node_should_run(node, ds, spec)
            if (old is None and verdict[0]) or (old is not None and verdict != node_should_run(old, ds, spec)):
                self.queue.add(object_key(ds))

    # -- sync --------------------------------------------------------------------------------------------
    async def sync(self, key: Hashable) -> float | None:
        assert isinstance(key, str)
        ds = self.daemonsets.get(key)
        if ds is None:
            self.expectations.forget(key)
            return None
        raw_selector = (ds.get("spec") or {}).get("selector")
        if raw_selector == {}:
            await self.recorder.event(ds, "Warning", "SelectingAll",
                                      "This daemon set is selecting all pods. A non-empty selector is required.")
            return None
        if ds["metadata"].get("deletionTimestamp"):
            return None  # its revisions may be going: no status can be trusted now
        try:
            selector = selector_from_label_selector(raw_selector)
        except ValueError as err:
            log.warning("DaemonSet %s has an invalid selector: %s", key, err)
            return None
        self.backoff.gc()
        revisions = await self._claim(ds, selector, self.revision_index, self.rev_res)
        pods = await self._claim(ds, selector, self.pod_index, self.pods_res)
        cur, old = await self.history.construct(ds, revisions, pods)
        hash_ = (cur["metadata"].get("labels") or {}).get(HASH_LABEL, "")
        nodes = {n["metadata"]["name"]: n for n in self.nodes.items()}
        spec = self._pod_spec(ds)
        verdicts = {name: node_should_run(node, ds, spec) for name, node in nodes.items()}
        waits: list[float] = []
        acted = self.expectations.satisfied(key)
        error: ApiError | None = None
        if acted:
            try:
                waits += await self._update(key, ds, verdicts, selector, hash_, old)
            except ApiError as err:
                error = err
        pods = await self._claim(ds, selector, self.pod_index, self.pods_res)
        counts = await self._write_status(ds, verdicts, pods, hash_, observe=acted)
        if error is not None:
            raise error
        recheck = ds_status.recheck_after(ds, counts)
        if recheck is not None:
            waits.append(recheck)
        return min(waits) if waits else None

    async def _claim(self, ds: JSON, selector: Selector, index: OwnerIndex, resource: Resource) -> list[JSON]:
        """The objects the DaemonSet controls, after adopting matching orphans and releasing strays."""
        return await claim(self.client, resource, ds, owner_reference(ds), selector, index.candidates(ds),
                           lambda: self._can_adopt(ds))

    async def _can_adopt(self, ds: JSON) -> None:
        meta = ds["metadata"]
        fresh = await self.client.get(self.ds_res, meta.get("namespace", ""), meta["name"])
        if fresh["metadata"].get("uid") != meta["uid"]:
            raise Conflict(f"original DaemonSet {meta.get('namespace')}/{meta['name']} is gone: got uid "
                           f"{fresh['metadata'].get('uid')}, wanted {meta['uid']}")
        if fresh["metadata"].get("deletionTimestamp"):
            raise Conflict(f"{meta.get('namespace')}/{meta['name']} has just been deleted at "
                           f"{fresh['metadata']['deletionTimestamp']}")

    def _pod_spec(self, ds: JSON) -> JSON:
        """``daemon_pod_spec`` of this version of the DaemonSet (node events ask for it once per node)."""
        meta = ds["metadata"]
        version = (meta.get("uid", ""), meta.get("resourceVersion", ""))
        spec = self._specs.get(version)
        if spec is None:
            if len(self._specs) > 1024:
                self._specs.clear()
            spec = self._specs[version] = daemon_pod_spec(ds)
        return spec

    async def _update(self, key: str, ds: JSON, verdicts: dict[str, tuple[bool, bool]], selector: Selector,
                      hash_: str, old: list[JSON]) -> list[float]:
        """Manage pods per node, then (once those writes are seen) a rolling update step; prune history."""
        pods = await self._claim(ds, selector, self.pod_index, self.pods_res)
        waits = await self._manage(key, ds, verdicts, _by_node(pods), hash_)
        strategy = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate")
        if self.expectations.satisfied(key) and strategy == "RollingUpdate":
            pods = await self._claim(ds, selector, self.pod_index, self.pods_res)
            node_pods = _by_node(pods)
            for name, (should_run, _) in verdicts.items():
                if should_run:
                    node_pods.setdefault(name, [])
            plan = rolling_update(ds, node_pods, lambda n: verdicts.get(n, (False, False))[0], hash_,
                                  template_generation(ds), utcnow())
            await self._sync_nodes(key, ds, plan.delete, plan.create, hash_)
        all_pods = await self._claim(ds, selector, self.pod_index, self.pods_res)
        await self.history.cleanup(ds, old, all_pods)
        return waits

    async def _manage(self, key: str, ds: JSON, verdicts: dict[str, tuple[bool, bool]],
                      node_pods: dict[str, list[JSON]], hash_: str) -> list[float]:
        """Create the pods nodes lack, delete those they should not have (``manage``)."""
        surge = allows_surge(ds)
        generation = template_generation(ds)
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = utcnow()
        create: list[str] = []
        delete: list[JSON] = []
        waits: list[float] = []
        for name, (should_run, should_continue) in verdicts.items():
            backoff_key = f"{ds['metadata']['uid']}/{(ds.get('status') or {}).get('observedGeneration', 0)}/{name}"
            plan = node_plan(should_run, should_continue, node_pods.get(name), surge, hash_, generation, min_ready,
                             now, self._backoff_gate(backoff_key))
            if plan.create:
                create.append(name)
            delete += plan.delete
            if plan.retry_after is not None:
                waits.append(plan.retry_after)
            await self._report_finished(ds, name, plan.failed, plan.succeeded)
        delete += _unscheduled_without_node(verdicts, node_pods)
        await self._sync_nodes(key, ds, delete, create, hash_)
        return waits

    def _backoff_gate(self, key: str) -> Callable[[], float | None]:
        def allows() -> float | None:
            wait = self.backoff.wait_left(key)
            if wait is None:
                self.backoff.use(key)
            return wait
        return allows

    async def _report_finished(self, ds: JSON, node: str, failed: list[JSON], succeeded: list[JSON]) -> None:
        for pod, type_, reason, verb in [(p, "Warning", "FailedDaemonPod", "failed") for p in failed] + [
                (p, "Normal", "SucceededDaemonPod", "succeeded") for p in succeeded]:
            action = "will try to kill it" if verb == "failed" else "will try to delete it"
            await self.recorder.event(ds, type_, reason, f"Found {verb} daemon pod "
                                      f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']} on node {node}, "
                                      f"{action}")

    async def _sync_nodes(self, key: str, ds: JSON, delete: list[JSON], create: list[str], hash_: str) -> None:
        """Create pods on ``create`` nodes (slow start) and delete ``delete`` pods, expecting to see each."""
        create, delete = create[:self.burst_replicas], delete[:self.burst_replicas]
        if not create and not delete:
            return
        self.expectations.expect(key, len(create), [object_key(p) for p in delete])
        generation = template_generation(ds)
        targets = iter(create)
        created, error = await slow_start_batch(len(create), 1,
                                                lambda: self._create_pod(ds, next(targets), hash_, generation))
        if len(create) > created:
            self.expectations.creation_observed(key, len(create) - created)  # failed or never sent
        results = await asyncio.gather(*(self._delete_pod(key, ds, p) for p in delete))
        error = error or next((e for e in results if e is not None), None)
        if error is not None:
            raise error

    async def _create_pod(self, ds: JSON, node: str, hash_: str, generation: int | None) -> None:
        try:
            created = await self.client.create(self.pods_res, ds["metadata"].get("namespace", ""),
                                               new_pod(ds, node, hash_, generation))
        except ApiError as err:
            causes = (err.details or {}).get("causes") or []
            if any(c.get("reason") == "NamespaceTerminating" for c in causes):
                return  # every create will fail while the namespace goes away
            await self.recorder.event(ds, "Warning", "FailedCreate", f"Error creating: {err.message}")
            raise
        await self.recorder.event(ds, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

    async def _delete_pod(self, key: str, ds: JSON, pod: JSON) -> ApiError | None:
        name = pod["metadata"]["name"]
        try:
            await self.client.delete(self.pods_res, pod["metadata"].get("namespace", ""), name,
                                     uid=pod["metadata"].get("uid"))
        except NotFound:
            self.expectations.deletion_observed(key, object_key(pod))
            return None
        except ApiError as err:
            self.expectations.deletion_observed(key, object_key(pod))
            await self.recorder.event(ds, "Warning", "FailedDelete", f"Error deleting: {err.message}")
            return err
        await self.recorder.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return None

    async def _write_status(self, ds: JSON, verdicts: dict[str, tuple[bool, bool]], pods: list[JSON], hash_: str,
                            *, observe: bool) -> dict[str, int]:
        counts = ds_status.count(ds, sorted(verdicts), _by_node(pods), lambda n: verdicts[n][0], hash_,
                                 template_generation(ds), utcnow())
        if not ds_status.needs_write(ds, counts, observe):
            return counts
        body = deep_copy(ds)
        for attempt in range(2):
            body["status"] = ds_status.new_status(ds, counts, observe)
            try:
                await self.client.update(self.ds_res, ds["metadata"].get("namespace", ""), body,
                                         subresource="status")
                return counts
            except Conflict:
                if attempt:
                    raise
                body = deep_copy(await self.client.get(self.ds_res, ds["metadata"].get("namespace", ""),
                                                       ds["metadata"]["name"]))
        return counts


def _placement_facts(node: JSON) -> tuple[object, ...]:
    """What of a node decides where daemon pods run: its name, labels and taints."""
    return (node["metadata"].get("name"), node["metadata"].get("labels") or {},
            (node.get("spec") or {}).get("taints") or [])


def _by_node(pods: list[JSON]) -> dict[str, list[JSON]]:
    """Daemon pods by the node they run on or are pinned to; finished pods already being deleted left out."""
    out: dict[str, list[JSON]] = {}
    for pod in pods:
        if is_pod_terminal(pod) and pod["metadata"].get("deletionTimestamp"):
            continue
        node = target_node(pod)
        if node is not None:
            out.setdefault(node, []).append(pod)
    return out


def _unscheduled_without_node(nodes: dict[str, tuple[bool, bool]], node_pods: dict[str, list[JSON]]) -> list[JSON]:
    """Pods pinned to nodes that no longer exist and never bound: nothing else would ever delete them."""
    return [p for name, pods in node_pods.items() if name not in nodes for p in pods
            if not (p.get("spec") or {}).get("nodeName") and not p["metadata"].get("deletionTimestamp")]

