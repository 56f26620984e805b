"""What goes into a Pod's file-backed volumes and where its claims live: configMap, secret, downwardAPI and
projected contents, and the host directory behind a ``persistentVolumeClaim``.

``VolumeSources`` reads ConfigMaps, Secrets, claims and volumes through the client at mount time and turns
each volume source into ``Files`` (relative path -> content and mode) for ``volumes.write_atomic``, or into a
host path for a claim. Whatever is missing (an object, a key, an unbound claim) raises ``VolumeMountFailure``
with the kubelet's FailedMount wording; the pod syncer keeps the Pod in ContainerCreating and tries again.
Sources marked ``optional`` are fine when missing. A projected ``serviceAccountToken`` is a token bound to the
Pod from the API server's TokenRequest, kept and renewed by ``satokens.TokenManager`` (a failed request is a
FailedMount like any other missing source).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nanokube.api.errors import ApiError, NotFound
from nanokube.client.interface import Client

from .podenv import ContainerConfigFailure, PodContext, field_value, resource_value
from .runtime.interface import RuntimeFailure
from .satokens import TokenManager, TokenRequester, request_token

JSON = dict[str, Any]
Files = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)
DEFAULT_MODE = 0o644
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
LOCAL_PATH = "rancher.io/local-path"


class VolumeMountFailure(RuntimeFailure):
    """A volume cannot be set up yet: the Pod waits in ContainerCreating with a FailedMount event (the
    message is the event's) and the syncer tries again."""

    reason = "ContainerCreating"


def setup_failed(volume: str, detail: str) -> VolumeMountFailure:
    """The kubelet's ``MountVolume.SetUp failed for volume "x" : <detail>``."""
    return VolumeMountFailure(f'MountVolume.SetUp failed for volume "{volume}" : {detail}')


def claim_failed(volume: str, namespace: str, claim: str, detail: str) -> VolumeMountFailure:
    """The kubelet's volume-manager wording for a claim it cannot use (not found, not bound, ...)."""
    return VolumeMountFailure(f"Unable to attach or mount volumes: unmounted volumes=[{volume}], unattached "
                              f"volumes=[], failed to process volumes=[{volume}]: error processing PVC "
                              f"{namespace}/{claim}: {detail}")


def decoded_data(obj: JSON, *, secret: bool) -> dict[str, bytes]:
    """A ConfigMap's data and binaryData, or a Secret's data, as bytes by key."""
    if secret:
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    found = {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
    found.update((k, str(v).encode()) for k, v in (obj.get("data") or {}).items())
    return found


class VolumeSources:
    def __init__(self, client: Client, *, node_allocatable: Mapping[str, str] | None = None,
                 token_requester: TokenRequester | None = None) -> None:
        self.client = client
        self.tokens = TokenManager(token_requester or (lambda ns, account, body: request_token(client, ns, account,
                                                                                                 body)))
        self.node_allocatable = dict(node_allocatable or {})  # resourceFieldRef default for unset limits
        reg = client.registry
        self._resources = {plural: reg.get("", "v1", plural)
                           for plural in ("configmaps", "secrets", "persistentvolumeclaims", "persistentvolumes")}

    async def _get(self, plural: str, namespace: str, name: str) -> JSON:
        resource = self._resources[plural]
        assert resource is not None
        return await self.client.get(resource, namespace, name)

    # -- configMap and secret -----------------------------------------------------------------------------
    async def object_files(self, volume: str, namespace: str, source: JSON, *, secret: bool,
                           default_mode: int | None = None) -> Files:
        """The files of a configMap or secret source (``name``, ``items``, ``optional``, modes)."""
        kind = "secret" if secret else "configmap"
        name, optional = str(source.get("name") or ""), bool(source.get("optional"))
        try:
            obj = await self._get("secrets" if secret else "configmaps", namespace, name)
        except NotFound:
            if optional:
                return {}
            raise setup_failed(volume, f'{kind} "{name}" not found') from None
        data = decoded_data(obj, secret=secret)
        mode = int(source.get("defaultMode", DEFAULT_MODE if default_mode is None else default_mode))
        items = source.get("items")
        if not items:
            return {key: (content, mode) for key, content in data.items()}
        files: Files = {}
        for item in items:
            if item["key"] not in data:
                if optional:
                    continue
                what = "secret key" if secret else "config key"
                raise setup_failed(volume, f"{kind} references non-existent {what}: {item['key']}")
            files[item["path"]] = (data[item["key"]], int(item.get("mode", mode)))
        return files

    # -- downward API ---------------------------------------------------------------------------------------
    def downward_files(self, volume: str, pod: JSON, source: JSON, default_mode: int | None = None) -> Files:
        """Files of a downwardAPI source: ``fieldRef`` (name, namespace, uid, labels, annotations, ...) and
        ``resourceFieldRef`` (a named container's limit or request) items."""
        mode = int(source.get("defaultMode", DEFAULT_MODE if default_mode is None else default_mode))
        context = PodContext(pod_ips=[ip["ip"] for ip in (pod.get("status") or {}).get("podIPs") or []],
                             host_ips=[ip["ip"] for ip in (pod.get("status") or {}).get("hostIPs") or []],
                             node_allocatable=self.node_allocatable)
        files: Files = {}
        for item in source.get("items") or []:
            try:
                text = _downward_value(pod, item, context)
            except ContainerConfigFailure as err:
                raise setup_failed(volume, str(err)) from None
            files[item["path"]] = (text.encode(), int(item.get("mode", mode)))
        return files

    # -- projected ------------------------------------------------------------------------------------------
    async def projected_files(self, volume: str, pod: JSON, source: JSON) -> Files:
        """Every source of a projected volume in one directory; ``defaultMode`` applies to all of them."""
        namespace = pod["metadata"].get("namespace", "")
        mode = int(source.get("defaultMode", DEFAULT_MODE))
        files: Files = {}
        for part in source.get("sources") or []:
            if "configMap" in part:
                files.update(await self.object_files(volume, namespace, part["configMap"], secret=False,
                                                     default_mode=mode))
            elif "secret" in part:
                files.update(await self.object_files(volume, namespace, part["secret"], secret=True,
                                                     default_mode=mode))
            elif "downwardAPI" in part:
                files.update(self.downward_files(volume, pod, part["downwardAPI"], mode))
            elif "serviceAccountToken" in part:
                files.update(await self.token_files(volume, pod, part["serviceAccountToken"] or {}, mode))
            else:
                kind = next(iter(part), "unknown")
                raise setup_failed(volume, f"projected {kind} sources are not supported on this node")
        return files

    async def token_files(self, volume: str, pod: JSON, source: JSON, mode: int) -> Files:
        """The ``serviceAccountToken`` source's file: a current token bound to the Pod, at ``path``."""
        try:
            token = await self.tokens.token(pod, source)
        except Exception as err:  # the API server's answer, or no answer at all
            detail = err.message if isinstance(err, ApiError) else str(err) or type(err).__name__
            raise setup_failed(volume, f"failed to fetch token: {detail}") from None
        return {str(source.get("path") or "token"): (token.encode(), mode)}

    # -- persistentVolumeClaim ----------------------------------------------------------------------------
    async def claim_path(self, volume: str, namespace: str, source: JSON) -> Path:
        """The host directory of the claim's bound volume (a hostPath or local volume, made when missing)."""
        claim = str(source.get("claimName") or "")
        try:
            pvc = await self._get("persistentvolumeclaims", namespace, claim)
        except NotFound:
            raise claim_failed(volume, namespace, claim, "failed to fetch PVC from API server: "
                                                         f'persistentvolumeclaims "{claim}" not found') from None
        if pvc["metadata"].get("deletionTimestamp"):
            raise claim_failed(volume, namespace, claim, f"can't start pod because PVC {namespace}/{claim} "
                                                         "is being deleted")
        pv_name = (pvc.get("spec") or {}).get("volumeName")
        if (pvc.get("status") or {}).get("phase") != "Bound" or not pv_name:
            raise claim_failed(volume, namespace, claim, "PVC is not bound")
        try:
            pv = await self._get("persistentvolumes", "", pv_name)
        except NotFound:
            raise claim_failed(volume, namespace, claim, f'failed to fetch PV "{pv_name}" from API server: '
                                                         f'persistentvolumes "{pv_name}" not found') from None
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if ref.get("uid") and ref.get("uid") != pvc["metadata"].get("uid"):
            raise claim_failed(volume, namespace, claim, f'PV "{pv_name}" is not bound to this claim')
        return await asyncio.to_thread(_volume_dir, volume, pv)


def format_map(values: Mapping[str, str]) -> str:
    """A labels or annotations file: ``key="value"`` lines sorted by key, values quoted as Go's ``%q``
    (so a value with quotes or newlines stays on its line), no newline at the end."""
    return "\n".join(f"{k}={json.dumps(str(v), ensure_ascii=False)}" for k, v in sorted(values.items()))


def _downward_value(pod: JSON, item: JSON, context: PodContext) -> str:
    if "fieldRef" in item:
        path = item["fieldRef"]["fieldPath"]
        if path in ("metadata.labels", "metadata.annotations"):
            return format_map(pod["metadata"].get(path.split(".")[1]) or {})
        return field_value(pod, path, context)
    ref = item.get("resourceFieldRef")
    if ref is None:
        raise ContainerConfigFailure(f'downwardAPI item "{item.get("path")}" has no fieldRef or resourceFieldRef')
    name = ref.get("containerName") or ""
    spec = pod["spec"]
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    container = next((c for c in containers if c["name"] == name), None)
    if container is None:
        raise ContainerConfigFailure(f'container "{name}" not found in the pod')
    return resource_value(container, ref, context)


def _volume_dir(volume: str, pv: JSON) -> Path:
    """A hostPath or local PV's directory; a local-path volume's directory is made (``mkdir -m 0777``, as
    its helper Pod does) when missing, a hostPath's as its ``type`` says."""
    spec = pv.get("spec") or {}
    if spec.get("volumeMode") == "Block":
        raise setup_failed(volume, "block volumes are not supported on this node")
    source = spec.get("hostPath") or spec.get("local")
    if not source or not source.get("path"):
        kind = next((k for k in ("nfs", "csi", "iscsi", "rbd", "cephfs") if k in spec), "volume")
        raise setup_failed(volume, f"no volume plugin matched for this {kind} PersistentVolume")
    path = Path(source["path"])
    provisioned = ((pv.get("metadata") or {}).get("annotations") or {}).get(PROVISIONED_BY) == LOCAL_PATH
    creatable = provisioned or (spec.get("hostPath") or {}).get("type") == "DirectoryOrCreate"
    if not path.is_dir():
        if not creatable:
            raise setup_failed(volume, f"path {path} does not exist")
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o777 if provisioned else 0o755)
    return path
