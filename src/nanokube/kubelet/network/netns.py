"""Named network namespaces under /run/netns, made and removed exactly as ``ip netns add``/``delete`` do.

A Pod sandbox is a network namespace that outlives any process: iproute2 keeps it alive with an nsfs bind mount
at ``/run/netns/<name>`` (after making /run/netns a shared mount, so runc's and nsenter's mount namespaces see
it), and every tool that knows ``ip netns`` (``ip netns exec``, ``nsenter --net=``, runc's
``namespaces[].path``) can join it. ``prepare`` lets iproute2 make /run/netns shared once; after that a Pod's
namespace is made in-process, the way ``ip netns add`` makes it, by a short-lived thread of its own: network,
IPC and UTS namespaces belong to a thread, not the process, so the thread ``unshare``s, bind-mounts its
``/proc/thread-self/ns/net`` on the name, brings ``lo`` up with an ioctl and exits, taking its namespaces with
it (no fork of a threaded process, and about a millisecond instead of two ``ip`` runs, 10-20 ms under load).
``in_own_namespaces`` is that thread, for the sandbox's IPC and UTS namespaces too.

Creation is idempotent (an existing namespace is reused, a leftover placeholder file from a crash is
replaced), and so is deletion, so callers can retry after any failure.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import TypeVar

from .base import NetworkError
from .command import CommandError, run

NETNS_DIR = "/run/netns"
IP = "ip"
CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS = 0x40000000, 0x08000000, 0x04000000
MS_BIND, MNT_DETACH = 4096, 2
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


async def in_own_namespaces(flags: int, action: Callable[[], T]) -> T:
    """Run ``action`` on a new thread that first ``unshare``s ``flags`` (CLONE_NEWNET, CLONE_NEWIPC,
    CLONE_NEWUTS: per-thread namespaces); the thread ends after it, so nothing else ever runs inside them."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def thread() -> None:
        try:
            _check(_libc.unshare(flags), "unshare")
            result = action()
        except BaseException as e:  # handed to the awaiting task
            loop.call_soon_threadsafe(settle, None, e)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=thread, name="unshare", daemon=True).start()
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        # The thread finishes what it started (a mount, say) before the caller's cleanup runs.
        await asyncio.wait([done])
        if not done.cancelled():
            done.exception()  # retrieved: the caller is cancelled, not failed
        raise


def bind_namespace(kind: str, target: str) -> None:
    """Keep the calling thread's ``kind`` namespace (net, ipc, uts) alive by bind-mounting it on ``target``
    (an existing file)."""
    source = f"/proc/thread-self/ns/{kind}".encode()
    _check(_libc.mount(source, target.encode(), None, ctypes.c_ulong(MS_BIND), None), f"bind mount on {target}")


def loopback_up() -> None:
    """Bring ``lo`` up in the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def path(name: str, netns_dir: str = NETNS_DIR) -> str:
    """Where the namespace ``name`` lives (what CNI_NETNS and runc's namespace path want)."""
    _validate(name)
    return os.path.join(netns_dir, name)


def _validate(name: str) -> None:
    if not name or "/" in name or name in (".", "..") or len(name) > 255:
        raise NetworkError(f"invalid network namespace name {name!r}")


def is_mounted(ns_path: str) -> bool:
    """True when ``ns_path`` holds a live namespace (an nsfs mount), not just the placeholder file."""
    try:
        return os.stat(ns_path).st_dev != os.stat(os.path.dirname(ns_path)).st_dev
    except FileNotFoundError:
        return False


def exists(name: str, netns_dir: str = NETNS_DIR) -> bool:
    return is_mounted(path(name, netns_dir))


def list_names(prefix: str = "", netns_dir: str = NETNS_DIR) -> list[str]:
    """Names of the live namespaces starting with ``prefix``, sorted."""
    try:
        names = os.listdir(netns_dir)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix) and is_mounted(os.path.join(netns_dir, n)))


_MOUNTED_DIRS: set[str] = set()  # a cache: netns dirs seen mounted (iproute2 never unmounts them)


def dir_is_mounted(netns_dir: str = NETNS_DIR) -> bool:
    """True once ``ip netns`` has made ``netns_dir`` its own (shared) mount point."""
    if netns_dir in _MOUNTED_DIRS:
        return True
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            found = any(line.split()[4] == netns_dir for line in f)
    except OSError:
        return False
    if found:
        _MOUNTED_DIRS.add(netns_dir)
    return found


async def prepare(probe_name: str, *, timeout: float = 30.0) -> None:
    """Let iproute2 make /run/netns a shared mount point once, before Pods are set up concurrently.

    The first ``ip netns add`` after boot bind-mounts /run/netns onto itself (shared, so the namespaces
    made later show in other mount namespaces too); two of them racing can stack two such mounts and hide
    the first one's namespace under the second. Creating and deleting a probe namespace up front, alone,
    avoids that, and is what lets ``create`` make the namespaces itself afterwards.
    """
    if dir_is_mounted():
        return
    _validate(probe_name)
    try:
        await run([IP, "netns", "add", probe_name], timeout=timeout, check=True)
    except CommandError as e:
        raise NetworkError(f"creating network namespace {probe_name}: {e}") from e
    await delete(probe_name, timeout=timeout)


def _make(ns_path: str, bring_lo_up: bool) -> bool:
    """On the unshared thread: keep its namespace at ``ns_path``, ``lo`` up. False when a concurrent creator
    made it first (its namespace is used; this thread's goes with the thread)."""
    if os.path.lexists(ns_path) and not is_mounted(ns_path):
        os.unlink(ns_path)  # placeholder left by a crash between create and mount
    try:
        os.close(os.open(ns_path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
    except FileExistsError:
        if is_mounted(ns_path):
            return False
        raise OSError(f"{ns_path} appeared meanwhile") from None
    try:
        bind_namespace("net", ns_path)
    except OSError:
        os.unlink(ns_path)
        raise
    if bring_lo_up:
        loopback_up()
    return True


async def create(name: str, *, loopback_up: bool = True, timeout: float = 30.0) -> str:
    """Create ``/run/netns/<name>`` (reusing a live one), bring its ``lo`` up; returns the path."""
    ns_path = path(name)
    if is_mounted(ns_path):
        if loopback_up:
            await _ip_loopback_up(name, timeout)
        return ns_path
    if not dir_is_mounted():  # /run/netns is not ready for in-process namespaces: iproute2 makes it so
        await prepare(f"{name[:200]}-prep", timeout=timeout)
    try:
        await in_own_namespaces(CLONE_NEWNET, lambda: _make(ns_path, loopback_up))
    except OSError as e:
        if is_mounted(ns_path):  # the namespace was made, lo was not brought up: leave nothing half-done
            _remove(ns_path)
        raise NetworkError(f"creating network namespace {name}: {e}") from e
    return ns_path


async def _ip_loopback_up(name: str, timeout: float) -> None:
    try:
        await run([IP, "-n", name, "link", "set", "lo", "up"], timeout=timeout, check=True)
    except CommandError as e:
        raise NetworkError(f"bringing up lo in network namespace {name}: {e}") from e


def _remove(ns_path: str) -> None:
    """Detach the namespace's mount (it lives on while a process is inside) and remove the name."""
    if _libc.umount2(ns_path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            raise OSError(err, f"umount {ns_path}: {os.strerror(err)}")
    try:
        os.unlink(ns_path)
    except FileNotFoundError:
        pass


async def delete(name: str, *, timeout: float = 30.0) -> None:
    """Remove the namespace, as ``ip netns delete`` does; interfaces inside it (the Pod's veth end) go with
    it once nothing is in it any more. Missing is fine. (``timeout`` is kept for callers: nothing waits.)"""
    ns_path = path(name)
    if not os.path.lexists(ns_path):
        return
    try:
        _remove(ns_path)
    except OSError as e:
        raise NetworkError(f"deleting network namespace {name}: {e}") from e


def exec_argv(name: str, argv: list[str]) -> list[str]:
    """``argv`` run inside the namespace (``ip netns exec``, which also gives it a matching /sys)."""
    _validate(name)
    return [IP, "netns", "exec", name, *argv]
