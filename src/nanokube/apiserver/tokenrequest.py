"""ServiceAccount tokens: the ``serviceaccounts/<name>/token`` subresource (TokenRequest) and the bearer-token
authenticator that accepts what it issues.

Tokens are RS256 JWTs signed with the API server's service-account key (``util.certs.ensure_service_account_key``
keeps it in the data dir's pki, so tokens survive restarts), shaped as kube's bound tokens are: ``iss``, ``sub``
(``system:serviceaccount:NS:NAME``), ``aud``, ``exp``/``iat``/``nbf``, ``jti`` and the private ``kubernetes.io``
claim naming the namespace, the ServiceAccount and the Pod (or Secret) the token is bound to. A token is
accepted while its signature, lifetime and audience hold and the objects it names still exist with the same
uids, as kube's ``legacy``-free bound-token validator checks. Verification reads the store on every request;
there is no cache, so a deleted ServiceAccount or Pod stops its tokens at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from nanokube.api.errors import BadRequest, Conflict, FieldError, Invalid, NotFound
from nanokube.util.timeutil import rfc3339

from .storage import ObjectStorage

JSON = dict[str, Any]
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 1 << 32
_BINDABLE = ("Pod", "Secret")


@dataclass(frozen=True)
class ServiceAccountUser:
    """Who a valid token speaks for."""

    namespace: str
    name: str
    uid: str
    groups: tuple[str, ...] = field(default=())

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_signing_key(pem: bytes | None) -> rsa.RSAPrivateKey:
    """The RSA key from PEM, or a fresh one (for servers without a data dir: tokens die with the process)."""
    if pem is None:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the service-account key must be an RSA private key")
    return key


class ServiceAccountTokens:
    """Issues TokenRequest tokens and authenticates them against the live ServiceAccounts and Pods."""

    def __init__(self, storage: ObjectStorage, key_pem: bytes | None = None, *,
                 issuer: str = DEFAULT_ISSUER, audiences: tuple[str, ...] = ()) -> None:
        self.storage = storage
        self._key_pem = key_pem
        self._key: rsa.RSAPrivateKey | None = None  # loaded (or made) on first use: RSA keys take a while
        self.issuer = issuer
        self.audiences = audiences or (issuer,)

    @property
    def key(self) -> rsa.RSAPrivateKey:
        if self._key is None:
            self._key = load_signing_key(self._key_pem)
        return self._key

    @property
    def key_id(self) -> str:
        """kube's ``kid``: the unpadded base64url SHA-256 of the public key's DER form."""
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return _b64(hashlib.sha256(der).digest())

    # -- issuing ------------------------------------------------------------------------------------------
    async def request(self, namespace: str, name: str, body: JSON) -> JSON:
        """Answer a TokenRequest for ServiceAccount ``namespace/name``: the request with its defaulted spec and
        ``status.token``/``status.expirationTimestamp``. NotFound for a missing ServiceAccount or bound object,
        Invalid for a bad spec, Conflict for a bound object whose uid changed."""
        spec = dict(body.get("spec") or {}) if isinstance(body, dict) else {}
        seconds = spec.get("expirationSeconds")
        seconds = DEFAULT_EXPIRATION if seconds is None else seconds
        audiences = list(spec.get("audiences") or self.audiences)
        errors = _validate(name, seconds, audiences)
        if errors:
            raise Invalid("TokenRequest", "authentication.k8s.io", name, errors)
        account = await self._get("serviceaccounts", namespace, name)
        private: JSON = {"namespace": namespace,
                         "serviceaccount": {"name": name, "uid": account["metadata"]["uid"]}}
        ref = spec.get("boundObjectRef")
        if ref:
            private.update(await self._bind(namespace, name, ref))
            spec["boundObjectRef"] = {"apiVersion": ref.get("apiVersion") or "v1", "kind": ref["kind"],
                                      "name": ref["name"], "uid": private[ref["kind"].lower()]["uid"]}
        now = int(time.time())
        expires = now + int(seconds)
        claims = {"aud": audiences, "exp": expires, "iat": now, "nbf": now, "iss": self.issuer,
                  "jti": str(uuid.uuid4()), "kubernetes.io": private,
                  "sub": f"system:serviceaccount:{namespace}:{name}"}
        spec.update(audiences=audiences, expirationSeconds=int(seconds))
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
                "spec": spec,
                "status": {"token": self.sign(claims), "expirationTimestamp": rfc3339(datetime.fromtimestamp(expires, UTC))}}

    async def _bind(self, namespace: str, account: str, ref: JSON) -> JSON:
        kind, name = ref.get("kind"), ref.get("name")
        if kind not in _BINDABLE or not name:
            raise BadRequest(f"cannot bind token for object of kind {kind!r}: only Pod and Secret objects "
                             "(named) can be bound")
        obj = await self._get("pods" if kind == "Pod" else "secrets", namespace, str(name))
        uid = obj["metadata"]["uid"]
        if ref.get("uid") and ref["uid"] != uid:
            raise Conflict(f"the UID in the bound object reference ({ref['uid']}) does not match the UID in "
                           "record. The object might have been deleted and then recreated")
        if kind == "Pod" and (obj.get("spec") or {}).get("serviceAccountName", "default") != account:
            raise BadRequest(f'cannot bind token for serviceaccount "{account}" to pod running with different '
                             "serviceaccount name.")
        claims: JSON = {kind.lower(): {"name": name, "uid": uid}}
        node = (obj.get("spec") or {}).get("nodeName") if kind == "Pod" else None
        if node:  # kube names the Pod's node too (ServiceAccountTokenPodNodeInfo); not checked on use
            try:
                claims["node"] = {"name": node, "uid": (await self._get("nodes", "", node))["metadata"]["uid"]}
            except NotFound:
                pass
        return claims

    def sign(self, claims: JSON) -> str:
        header = {"alg": "RS256", "kid": self.key_id}
        signing_input = f"{_b64(_json(header))}.{_b64(_json(claims))}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    # -- authenticating -----------------------------------------------------------------------------------
    def verify(self, token: str) -> JSON | None:
        """The claims of a token this server signed that is current and meant for it; None otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header, claims = json.loads(_unb64(parts[0])), json.loads(_unb64(parts[1]))
            self.key.public_key().verify(_unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(),
                                   hashes.SHA256())
        except (ValueError, InvalidSignature):
            return None
        if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
            return None
        now = time.time()
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences or []
        if (claims.get("iss") != self.issuer or not isinstance(claims.get("exp"), int) or claims["exp"] <= now
                or int(claims.get("nbf", 0)) > now + 60 or not set(audiences) & set(self.audiences)):
            return None
        return claims

    async def authenticate(self, token: str) -> ServiceAccountUser | None:
        """The ServiceAccount a bearer token speaks for, or None when it is not (or no longer) valid."""
        claims = self.verify(token)
        private = claims.get("kubernetes.io") if claims else None
        if not isinstance(private, dict):
            return None
        namespace = str(private.get("namespace") or "")
        account = private.get("serviceaccount") or {}
        if not await self._still_there("serviceaccounts", namespace, account):
            return None
        for kind, plural in (("pod", "pods"), ("secret", "secrets")):
            if kind in private and not await self._still_there(plural, namespace, private[kind]):
                return None
        return ServiceAccountUser(namespace, str(account["name"]), str(account.get("uid") or ""),
                                  ("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                                   "system:authenticated"))

    async def _still_there(self, plural: str, namespace: str, ref: Any) -> bool:
        if not isinstance(ref, dict) or not ref.get("name"):
            return False
        try:
            obj = await self._get(plural, namespace, str(ref["name"]))
        except NotFound:
            return False
        return not ref.get("uid") or obj["metadata"]["uid"] == ref["uid"]

    async def _get(self, plural: str, namespace: str, name: str) -> JSON:
        resource = self.storage.registry.get("", "v1", plural)
        assert resource is not None
        return await self.storage.get(resource, namespace, name)


def _validate(name: str, seconds: Any, audiences: list[Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        errors.append(FieldError.invalid("spec.expirationSeconds", seconds, "must be an integer"))
    elif seconds < MIN_EXPIRATION:
        errors.append(FieldError.invalid("spec.expirationSeconds", seconds,
                                         "may not specify a duration less than 10 minutes"))
    elif seconds > MAX_EXPIRATION:
        errors.append(FieldError.invalid("spec.expirationSeconds", seconds,
                                         "may not specify a duration larger than 2^32 seconds"))
    if not all(isinstance(a, str) and a for a in audiences):
        errors.append(FieldError.invalid("spec.audiences", audiences, "audiences must be non-empty strings"))
    return errors


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
