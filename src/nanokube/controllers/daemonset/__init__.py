"""DaemonSets: one pod of the template on every node that should run it, rolled onto new templates.

``controller`` holds the DaemonSetController (informers, sync, pod writes); ``placement`` which nodes should run
a daemon pod and how pods are pinned to them; ``pods`` the per-node plan, pod construction, expectations and
failed-pod back-off; ``update`` the RollingUpdate step (maxUnavailable, maxSurge); ``history`` the
ControllerRevisions; ``status`` the counts kubectl reads.
"""

from .controller import BURST_REPLICAS, DaemonSetController
from .history import GENERATION_LABEL, HASH_LABEL, History, compute_hash, revision_data, template_generation
from .placement import daemon_pod_spec, default_tolerations, node_should_run, pin_to_node, target_node
from .pods import Backoff, Expectations, new_pod, node_plan
from .update import Plan, rolling_update

__all__ = ["BURST_REPLICAS", "GENERATION_LABEL", "HASH_LABEL", "Backoff", "DaemonSetController", "Expectations",
           "History", "Plan", "compute_hash", "daemon_pod_spec", "default_tolerations", "new_pod", "node_plan",
           "node_should_run", "pin_to_node", "revision_data", "rolling_update", "target_node",
           "template_generation"]
