"""Pod networking for node agents: CNI bridge + host-local namespaces (root) or 127.x addresses (no root).

``PodNetwork`` is the native runtime's: a network namespace per Pod wired by the Debian
``containernetworking-plugins`` ``bridge`` and ``host-local`` plugins. ``LoopbackNetwork`` is the ``process``
runtime's fallback. Both satisfy ``PodNetworkProvider``; see their modules for the details.
"""

from .base import NetworkError, PodNetworkInfo, PodNetworkProvider
from .cni import CNIError, NetworkList
from .loopback import LoopbackNetwork, loopback_cidr_for
from .podnet import PodNetwork, PodNetworkConfig

__all__ = ["CNIError", "LoopbackNetwork", "NetworkError", "NetworkList", "PodNetwork", "PodNetworkConfig",
           "PodNetworkInfo", "PodNetworkProvider", "loopback_cidr_for"]
