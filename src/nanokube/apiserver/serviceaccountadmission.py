"""The ServiceAccount admission plugin, on Pod create: the API token volume and the account's pull secrets.

Unless the Pod or its ServiceAccount says ``automountServiceAccountToken: false``, every container and init
container gets the ``kube-api-access-<5 random>`` projected volume (a bound token from TokenRequest, the
``kube-root-ca.crt`` ConfigMap's CA, the namespace from the downward API) read-only at
``/var/run/secrets/kubernetes.io/serviceaccount`` — exactly the shape kube-apiserver writes, so
``kubectl get pod -o yaml`` reads the same. A container that already mounts something at that path is left
alone; a Pod that already has a ``kube-api-access-*`` volume keeps it. A Pod without ``imagePullSecrets`` gets
its ServiceAccount's. ``serviceAccountName`` itself is defaulted to ``default`` by the Pod defaults.

Unlike kube, a missing ServiceAccount does not reject the Pod (kube answers 403 until the serviceaccount
controller made ``default``; here Pods created right after their namespace would race it): the Pod is
admitted as if the account allowed automounting. Mirror Pods are left alone, as kube leaves them.
"""

from __future__ import annotations

from typing import Any

from nanokube.api.errors import NotFound
from nanokube.api.names import generate_name_suffix
from nanokube.api.registry import Resource

from .storage import ObjectStorage

JSON = dict[str, Any]
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION = 3607  # kube's: an hour and a bit, so a token older than an hour shows up in audits
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def api_access_volume(name: str) -> JSON:
    """The projected volume kube-apiserver adds (with every default filled in, as it is stored)."""
    return {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


def mount_api_access(spec: JSON, volume_name: str) -> bool:
    """Mount ``volume_name`` at the token path in every container that mounts nothing there; True if any."""
    mounted = False
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            mounts = container.setdefault("volumeMounts", [])
            if any(m.get("mountPath") == MOUNT_PATH for m in mounts):
                continue
            mounts.append({"name": volume_name, "readOnly": True, "mountPath": MOUNT_PATH})
            mounted = True
    return mounted


class ServiceAccountAdmission:
    def __init__(self, storage: ObjectStorage) -> None:
        self.storage = storage

    async def admit(self, resource: Resource, obj: JSON, live: JSON | None) -> None:
        """A storage admitter: changes a Pod being created in place; everything else passes untouched."""
        if live is not None or (resource.group, resource.plural) != ("", "pods"):
            return
        meta, spec = obj.get("metadata") or {}, obj.get("spec")
        if not isinstance(spec, dict) or MIRROR_ANNOTATION in (meta.get("annotations") or {}):
            return
        account = await self._account(meta.get("namespace", ""), spec.get("serviceAccountName") or "default")
        if account is not None and not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": s["name"]} for s in account["imagePullSecrets"]
                                        if isinstance(s, dict) and s.get("name")]
        if not _automount(spec, account):
            return
        volumes = spec.get("volumes") or []
        existing = next((v["name"] for v in volumes if str(v.get("name", "")).startswith(VOLUME_PREFIX)), "")
        taken = {v.get("name") for v in volumes}
        name = existing
        while not name or (name in taken and not existing):
            name = VOLUME_PREFIX + generate_name_suffix()
        if mount_api_access(spec, name) and not existing:
            spec["volumes"] = [*volumes, api_access_volume(name)]

    async def _account(self, namespace: str, name: str) -> JSON | None:
        accounts = self.storage.registry.get("", "v1", "serviceaccounts")
        assert accounts is not None
        try:
            return await self.storage.get(accounts, namespace, name)
        except NotFound:
            return None


def _automount(spec: JSON, account: JSON | None) -> bool:
    """The Pod's own setting wins; then the ServiceAccount's; then yes."""
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if account is not None and account.get("automountServiceAccountToken") is not None:
        return bool(account["automountServiceAccountToken"])
    return True
