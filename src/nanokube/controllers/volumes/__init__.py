"""Persistent storage: PV/PVC binding, the built-in local-path provisioner, the default StorageClass and the
in-use protection finalizers, each a controller of its own as in kube-controller-manager (plus k3s's
local-path-provisioner). ``volume_controllers`` builds them all for the controller manager."""

from __future__ import annotations

from nanokube.client.interface import Client

from ..base import Controller
from .binder import PersistentVolumeController
from .common import DirHook, VolumeSettings
from .hostdirs import host_directory_hooks
from .protection import PVCProtectionController, PVProtectionController
from .provisioner import LocalPathProvisioner
from .storageclass import default_storage_class, ensure_default_storage_class


def volume_controllers(client: Client, settings: VolumeSettings | None = None) -> list[Controller]:
    shared = settings or VolumeSettings()
    return [PersistentVolumeController(client, shared), LocalPathProvisioner(client, shared),
            PVCProtectionController(client), PVProtectionController(client)]


__all__ = [
    "DirHook",
    "LocalPathProvisioner",
    "PVCProtectionController",
    "PVProtectionController",
    "PersistentVolumeController",
    "VolumeSettings",
    "default_storage_class",
    "ensure_default_storage_class",
    "host_directory_hooks",
    "volume_controllers",
]
