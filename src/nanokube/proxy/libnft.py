"""Running nft scripts: in-process through libnftables (ctypes), or with the ``nft`` command.

``nft -f`` costs a process start plus a fresh dump of the table on every call (about 25 ms at 1,000
Services on this machine); libnftables, the library ``nft`` itself is built on (Debian ``libnftables1``,
installed with ``nftables``), keeps one context and costs about 6 ms for the same transaction. Both apply a
script as one transaction. ``LibNftables`` runs every call on one dedicated thread (the event loop never
blocks, and a thread that has entered a network namespace with ``setns`` keeps it: the tests and the
benchmark program a namespace of their own this way). ``NftCommand`` is the fallback and what callers that
name a command (``ip netns exec NS nft``) get. ``nft_runner`` picks one.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

CLONE_NEWNET = 0x40000000


class NftError(Exception):
    """nft refused a transaction; nothing of it was applied."""


class NftRunner(Protocol):
    async def run(self, script: str) -> None: ...

    def close(self) -> None: ...


class NftCommand:
    def __init__(self, command: Sequence[str] = ("nft",), timeout: float = 30.0) -> None:
        self.command = tuple(command)
        self.timeout = timeout

    async def run(self, script: str) -> None:
        proc = await asyncio.create_subprocess_exec(*self.command, "-f", "-", stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            _, err = await asyncio.wait_for(proc.communicate(script.encode()), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise NftError(f"nft did not finish in {self.timeout}s") from None
        if proc.returncode != 0:
            raise NftError(err.decode(errors="replace").strip() or f"nft exited with {proc.returncode}")

    def close(self) -> None:
        pass


def _load() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("nftables") or "libnftables.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    return lib


class LibNftables:
    def __init__(self, lib: ctypes.CDLL, netns: str = "") -> None:
        self.lib = lib
        self.ctx: int | None = None
        self.netns = netns
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nft", initializer=self._enter)

    def _enter(self) -> None:
        if self.netns:
            fd = os.open(self.netns, os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {self.netns}")
            finally:
                os.close(fd)
        self.ctx = self.lib.nft_ctx_new(0)
        self.lib.nft_ctx_buffer_output(self.ctx)
        self.lib.nft_ctx_buffer_error(self.ctx)

    def _run(self, script: str) -> None:
        failed = self.lib.nft_run_cmd_from_buffer(self.ctx, script.encode()) != 0
        self.lib.nft_ctx_get_output_buffer(self.ctx)  # reading the buffers empties them
        message = self.lib.nft_ctx_get_error_buffer(self.ctx) or b"nft failed"
        if failed:
            raise NftError(message.decode(errors="replace").strip())

    async def run(self, script: str) -> None:
        await asyncio.get_running_loop().run_in_executor(self.pool, self._run, script)

    def close(self) -> None:
        def free() -> None:
            if self.ctx is not None:
                self.lib.nft_ctx_free(self.ctx)
                self.ctx = None
        self.pool.submit(free).result()
        self.pool.shutdown()


def nft_runner(command: Sequence[str] | None = None, *, netns: str = "") -> NftRunner:
    """libnftables when it loads (in ``netns`` when given), else the ``nft`` command; ``command`` forces one."""
    if command is not None:
        return NftCommand(command)
    lib = _load()
    if lib is not None:
        return LibNftables(lib, netns)
    if netns:
        return NftCommand(("nsenter", f"--net={netns}", "nft"))
    return NftCommand()


def nft_available() -> tuple[bool, str]:
    """(True, "") when this process can program nftables (root and libnftables or nft), else (False, why)."""
    if os.geteuid() != 0:
        return False, "programming nftables needs root"
    if _load() is None and shutil.which("nft") is None:
        return False, "nftables is not installed (apt-get install nftables)"
    return True, ""
