"""Streaming subresources proxied to kubelets: pods/log, pods/exec, pods/attach, pods/portforward.

Wiring: ``APIServer.rest.sub.streaming = StreamingProxy(storage, registry, StreamingSettings(kubelet_token=T))``.
"""

from .proxy import KUBELET_ADDRESS_ANNOTATION, StreamingProxy, StreamingSettings

__all__ = ["KUBELET_ADDRESS_ANNOTATION", "StreamingProxy", "StreamingSettings"]
