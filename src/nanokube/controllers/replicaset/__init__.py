"""ReplicaSets and ReplicationControllers: keep ``spec.replicas`` pods of the template alive.

``controller`` holds the ReplicaSetController (both kinds) and ``status`` what it writes; ``pods`` the
owner/readiness helpers and ``claim`` that the Deployment controller shares; ``expectations`` and ``ranking`` the
pieces of kube's controller utilities this needs (writes in flight, which pods go first).
"""

from .controller import ReplicaSetController, slow_start_batch
from .expectations import Expectations, WrittenStatus
from .pods import (
    OwnerIndex,
    claim,
    controller_ref,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    owner_reference,
)
from .ranking import pods_to_delete
from .status import calculate_status

__all__ = ["Expectations", "OwnerIndex", "ReplicaSetController", "WrittenStatus", "calculate_status", "claim",
           "controller_ref", "is_pod_active", "is_pod_available", "is_pod_ready", "owner_reference",
           "pods_to_delete", "slow_start_batch"]
