"""Who a request speaks for, as a userInfo (``username``, ``uid``, ``groups``): set by the API server's
authentication on each request (``request["user"]``) and reported by ``kubectl auth whoami``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

# The holder of a static token (the admin kubeconfig's, the node token): RBAC is not enforced, so everyone
# authenticated may do everything; this says so the way kube says it for cluster administrators.
ADMIN: dict[str, Any] = {"username": "admin", "groups": ["system:masters", "system:authenticated"]}

# Where authentication leaves the userInfo on each request.
USER: web.RequestKey[dict[str, Any]] = web.RequestKey("user", dict)
