"""Directory hooks for the provisioner on the node that runs on this machine.

local-path-provisioner makes and removes a volume's directory with a helper Pod on the volume's node. nanokube
provisions from the control plane instead, so the directory can only be touched here when the volume's node is
this machine's own; volumes of other (or simulated) nodes are left for their kubelet, which creates a hostPath
``DirectoryOrCreate`` directory when it mounts it. ``host_directory_hooks(node, base)`` gives the pair to put
into ``VolumeSettings.create_dir``/``remove_dir``. Removal refuses any path outside ``base`` that is not a
provisioned ``pvc-…`` directory, so a hand-made volume cannot make it delete elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import shutil

from .common import DirHook


def host_directory_hooks(local_node: str, base_dir: str) -> tuple[DirHook, DirHook]:
    base = os.path.realpath(base_dir)

    def inside(path: str) -> bool:
        real = os.path.realpath(path)
        return os.path.dirname(real) == base and os.path.basename(real).startswith("pvc-")

    def make(path: str) -> None:
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o777)  # local-path's setup script: mkdir -m 0777

    def remove(path: str) -> None:
        if os.path.isdir(path):
            shutil.rmtree(path)

    async def create_dir(node: str, path: str) -> None:
        if node != local_node:
            return
        if not inside(path):
            raise ValueError(f"volume path {path} is not a volume directory under {base}")
        await asyncio.to_thread(make, path)

    async def remove_dir(node: str, path: str) -> None:
        if node != local_node:
            return
        if not inside(path):
            raise ValueError(f"refusing to remove {path}: not a volume directory under {base}")
        await asyncio.to_thread(remove, path)

    return create_dir, remove_dir
