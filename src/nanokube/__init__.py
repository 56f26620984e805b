"""nanokube: Kubernetes' workload model in Python, driven by the real kubectl and Python client."""

__version__ = "0.1.0"
KUBERNETES_VERSION = (1, 37)
