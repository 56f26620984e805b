"""Deployments: ReplicaSets per pod template, rolled by RollingUpdate or Recreate, with revision history,
pause/resume, progress deadlines and the status ``kubectl rollout`` reads.

``controller`` routes events and starts each sync; ``sync`` holds one sync's state and writes (new ReplicaSet,
scaling, history cleanup, status); ``rolling`` and ``recreate`` are the strategies; ``progress`` computes
status and conditions; ``util`` is the pure arithmetic (hash, annotations, fenceposts, orderings).
"""

from .controller import DeploymentController

__all__ = ["DeploymentController"]
