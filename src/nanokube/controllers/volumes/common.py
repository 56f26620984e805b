"""What the volume controllers share: Kubernetes' annotation and finalizer names, the settings, and small
read-only helpers over claims, volumes and the Pods that use them (no I/O).

The names are the ones kube-controller-manager and the external provisioner library write, so ``kubectl
describe`` and tools that read them (the scheduler's VolumeBinding plugin among them) see what they expect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from nanokube.api.quantity import parse_quantity

JSON = dict[str, Any]

BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
IS_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
BETA_IS_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
HOSTNAME_LABEL = "kubernetes.io/hostname"

# A directory hook gets (node name, directory path). The provisioner awaits it before creating a volume
# (create) or after its claim is gone (remove); raising makes the provisioner report the failure and retry.
DirHook = Callable[[str, str], Awaitable[None]]


@dataclass
class VolumeSettings:
    """How the built-in storage behaves; ``cmd`` builds one from flags.

    ``create_dir``/``remove_dir`` are left None by default: the provisioner then only records the path in the
    volume. Wire them (``hostdirs.host_directory_hooks``) for the node that runs on this machine; simulated
    nodes must not create directories on the host.
    """

    storage_dir: str = "/var/lib/nanokube/storage"  # k3s: /var/lib/rancher/k3s/storage
    provisioner_name: str = "rancher.io/local-path"
    default_class: str = "local-path"  # created at start when missing; "" creates none
    volume_type: str = "hostPath"  # or "local"; a claim's ``volumeType`` annotation overrides it
    resync_period: float = 15.0  # kube-controller-manager's pvclaimbinder-sync-period
    create_dir: DirHook | None = None
    remove_dir: DirHook | None = None


def meta(obj: JSON) -> JSON:
    return obj.get("metadata") or {}


def spec(obj: JSON) -> JSON:
    return obj.get("spec") or {}


def annotations_of(obj: JSON) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def key_of(obj: JSON) -> str:
    m = meta(obj)
    return f"{m['namespace']}/{m['name']}" if m.get("namespace") else str(m.get("name", ""))


def claim_class(pvc: JSON) -> str:
    """``GetPersistentVolumeClaimClass``: the beta annotation wins, then ``spec.storageClassName``, else ""."""
    beta = annotations_of(pvc).get(BETA_STORAGE_CLASS)
    if beta is not None:
        return beta
    return str(spec(pvc).get("storageClassName") or "")


def claim_has_class(pvc: JSON) -> bool:
    """The user asked for a class (even ""): such a claim never gets the default one."""
    return BETA_STORAGE_CLASS in annotations_of(pvc) or spec(pvc).get("storageClassName") is not None


def volume_class(pv: JSON) -> str:
    beta = annotations_of(pv).get(BETA_STORAGE_CLASS)
    if beta is not None:
        return beta
    return str(spec(pv).get("storageClassName") or "")


def storage_amount(value: Any) -> Fraction:
    try:
        return parse_quantity(value) if value is not None else Fraction(0)
    except (TypeError, ValueError):
        return Fraction(0)


def requested_storage(pvc: JSON) -> Fraction:
    return storage_amount(((spec(pvc).get("resources") or {}).get("requests") or {}).get("storage"))


def volume_capacity(pv: JSON) -> Fraction:
    return storage_amount((spec(pv).get("capacity") or {}).get("storage"))


def phase(obj: JSON) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def claim_ref(pvc: JSON) -> JSON:
    """The ``ObjectReference`` a volume's ``spec.claimRef`` holds for ``pvc``."""
    m = meta(pvc)
    ref = {"kind": "PersistentVolumeClaim", "namespace": m.get("namespace", ""), "name": m.get("name", ""),
           "uid": m.get("uid", ""), "apiVersion": "v1", "resourceVersion": m.get("resourceVersion", "")}
    return {k: v for k, v in ref.items() if v}


def is_bound_to(pv: JSON, pvc: JSON) -> bool:
    """``IsVolumeBoundToClaim``: the volume names this claim (an empty uid in the reference is a pre-binding)."""
    ref = spec(pv).get("claimRef")
    if not isinstance(ref, dict):
        return False
    m = meta(pvc)
    if ref.get("name") != m.get("name") or ref.get("namespace") != m.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == m.get("uid")


def is_delay_binding(pvc: JSON, classes: dict[str, JSON]) -> bool:
    """``IsDelayBindingMode``: the claim's class binds WaitForFirstConsumer (a missing class does not)."""
    name = claim_class(pvc)
    storage_class = classes.get(name) if name else None
    return bool(storage_class) and (storage_class or {}).get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER


def pod_claim_names(pod: JSON) -> Iterator[str]:
    """The claims a Pod's volumes name: ``persistentVolumeClaim`` ones and generic ephemeral ones
    (``<pod>-<volume>``)."""
    for volume in spec(pod).get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        source = volume.get("persistentVolumeClaim")
        if isinstance(source, dict) and source.get("claimName"):
            yield str(source["claimName"])
        elif isinstance(volume.get("ephemeral"), dict):
            yield f"{meta(pod).get('name')}-{volume.get('name')}"


def pod_terminated(pod: JSON) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


class ClaimUsers:
    """An index from claim key (``ns/name``) to the keys of the Pods that name it, kept by a pod informer's
    handler: kube's ``PodPVCIndex``."""

    def __init__(self) -> None:
        self._users: dict[str, set[str]] = {}
        self._claims: dict[str, list[str]] = {}

    def update(self, kind: str, pod: JSON) -> list[str]:
        """Record a pod event; returns the claim keys the pod names (now or before)."""
        pod_key = key_of(pod)
        before = self._claims.pop(pod_key, [])
        for claim in before:
            users = self._users.get(claim)
            if users is not None:
                users.discard(pod_key)
                if not users:
                    del self._users[claim]
        if kind == "DELETED":
            return before
        namespace = meta(pod).get("namespace", "")
        now = [f"{namespace}/{name}" for name in pod_claim_names(pod)]
        if now:
            self._claims[pod_key] = now
            for claim in now:
                self._users.setdefault(claim, set()).add(pod_key)
        return sorted(set(before) | set(now))

    def pods(self, claim_key: str) -> list[str]:
        return sorted(self._users.get(claim_key, ()))
