"""The kubelet's ServiceAccount token manager: tokens for projected ``serviceAccountToken`` sources.

``TokenManager.token`` asks the API server for a TokenRequest bound to the Pod (its ServiceAccount, the
source's audience and ``expirationSeconds``) and keeps the answer per (Pod uid, audience, lifetime), handing
out the same token until it is due for renewal: past 80% of its lifetime or older than 24 hours, as kube's
token manager renews. Callers ask on every Pod sync; a renewal happens on the first sync after it is due.
``forget`` drops a Pod's tokens once the Pod is gone.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nanokube.client.interface import Client
from nanokube.util.timeutil import parse_rfc3339

JSON = dict[str, Any]
TokenRequester = Callable[[str, str, JSON], Awaitable[JSON]]  # (namespace, account, TokenRequest) -> answer
RENEW_FRACTION = 0.8
MAX_AGE = 24 * 3600.0


async def request_token(client: Client, namespace: str, account: str, body: JSON) -> JSON:
    """POST a TokenRequest for ``namespace/account`` through ``client``; the answered TokenRequest."""
    return await client.request_token(namespace, account, body)


@dataclass
class _Held:
    token: str
    issued: float  # monotonic
    lifetime: float  # seconds


class TokenManager:
    def __init__(self, requester: TokenRequester, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.requester = requester
        self.clock = clock
        self._held: dict[tuple[str, str, int], _Held] = {}

    async def token(self, pod: JSON, source: JSON) -> str:
        """A current token for the Pod's ServiceAccount per ``source`` (``audience``, ``expirationSeconds``);
        raises what the TokenRequest raised when none can be had."""
        meta = pod["metadata"]
        seconds = int(source.get("expirationSeconds") or 3600)
        audience = str(source.get("audience") or "")
        key = (str(meta["uid"]), audience, seconds)
        held = self._held.get(key)
        if held is not None and not self._due(held):
            return held.token
        spec: JSON = {"expirationSeconds": seconds,
                      "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}}
        if audience:
            spec["audiences"] = [audience]
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        answer = await self.requester(meta.get("namespace", ""), account,
                                      {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                       "spec": spec})
        status = answer.get("status") or {}
        now = self.clock()
        lifetime = float(seconds)
        if status.get("expirationTimestamp"):
            remaining = parse_rfc3339(status["expirationTimestamp"]).timestamp() - time.time()
            lifetime = max(min(lifetime, remaining), 1.0)
        self._held[key] = _Held(str(status["token"]), now, lifetime)
        return self._held[key].token

    def _due(self, held: _Held) -> bool:
        age = self.clock() - held.issued
        return age >= held.lifetime * RENEW_FRACTION or age >= MAX_AGE

    def forget(self, uid: str) -> None:
        """The Pod is gone: its tokens are no longer handed out or renewed."""
        for key in [k for k in self._held if k[0] == uid]:
            del self._held[key]
