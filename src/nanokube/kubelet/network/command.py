"""Run a helper binary (``ip``, a CNI plugin) without blocking the event loop.

Everything the network package does to the host goes through ``run``: one place that starts the process with
``asyncio.create_subprocess_exec``, feeds stdin, collects both outputs and kills the process when it overstays
its timeout, so a hung plugin costs the caller an exception rather than a stuck pod worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        """The command and what it said, for error messages."""
        said = (self.stderr or self.stdout).decode(errors="replace").strip()
        return f"{' '.join(self.argv)!s} exited {self.returncode}: {said}"


class CommandError(Exception):
    def __init__(self, result: CommandResult) -> None:
        super().__init__(result.describe())
        self.result = result


async def run(argv: Sequence[str], *, stdin: bytes | None = None, env: Mapping[str, str] | None = None,
              timeout: float = 30.0, check: bool = False) -> CommandResult:
    """Run ``argv`` to completion; with ``check`` a non-zero exit raises ``CommandError``.

    A missing binary raises ``FileNotFoundError``; overstaying ``timeout`` kills the process and raises
    ``TimeoutError``.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else None)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    result = CommandResult(tuple(argv), proc.returncode, out, err)
    if check and not result.ok:
        raise CommandError(result)
    return result
