"""One small JSON file per Pod, written atomically, so a restarted agent knows which networks it made.

The record is the network's memory across restarts: what the Pod is, which namespace it has, and the CNI
result of its ADD (which DEL and CHECK need back, as libcni's result cache does). Writes go to a temporary
file renamed over the old one, so a crashed agent leaves either the old record or the new one, never half of
either. They are not fsynced: the records only have to outlive the agent process, not the machine (after a
reboot the namespaces they describe are gone, and an unreadable record is cleaned up like a stale one).
File work runs in a thread to keep the event loop free.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from typing import Any

from .base import NetworkError

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SUFFIX = ".json"


class RecordStore:
    def __init__(self, directory: str) -> None:
        self.directory = directory

    def path(self, key: str) -> str:
        if not _SAFE.match(key) or len(key) > 200:
            raise NetworkError(f"invalid pod uid {key!r}")
        return os.path.join(self.directory, key + SUFFIX)

    async def write(self, key: str, data: dict[str, Any]) -> None:
        await asyncio.to_thread(self._write, self.path(key), data)

    async def read(self, key: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._read, self.path(key))

    async def remove(self, key: str) -> None:
        target = self.path(key)
        await asyncio.to_thread(self._remove, target)

    async def all(self) -> dict[str, dict[str, Any]]:
        """Every readable record by key; unreadable ones are reported as empty dicts (so they get cleaned)."""
        return await asyncio.to_thread(self._all)

    def _write(self, target: str, data: dict[str, Any]) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        temp = f"{target}.tmp.{os.getpid()}"
        with open(temp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(temp, target)

    @staticmethod
    def _read(target: str) -> dict[str, Any] | None:
        try:
            with open(target, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _remove(target: str) -> None:
        try:
            os.unlink(target)
        except FileNotFoundError:
            pass

    def _all(self) -> dict[str, dict[str, Any]]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return {}
        found: dict[str, dict[str, Any]] = {}
        for name in sorted(names):
            key = name[: -len(SUFFIX)]
            if name.endswith(SUFFIX) and _SAFE.match(key):
                found[key] = self._read(os.path.join(self.directory, name)) or {}
            elif ".json.tmp." in name:
                self._remove(os.path.join(self.directory, name))  # an interrupted write
        return found
