"""The controller manager: runs every controller as an asyncio task until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nanokube.client.interface import Client

from .base import Controller
from .gc import GarbageCollector
from .namespace import NamespaceController

log = logging.getLogger(__name__)


def default_controllers(client: Client) -> list[Controller]:
    return [NamespaceController(client), GarbageCollector(client)]


class ControllerManager:
    def __init__(self, client: Client, controllers: list[Controller] | None = None) -> None:
        self.controllers = controllers if controllers is not None else default_controllers(client)

    async def run(self, *, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(c.run(stop=stop), name=c.name) for c in self.controllers]
        log.info("controllers running: %s", ", ".join(c.name for c in self.controllers))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 5)
