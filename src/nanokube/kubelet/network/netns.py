"""Named network namespaces under /run/netns, made and removed exactly as ``ip netns add``/``delete`` do.

A Pod sandbox is a network namespace that outlives any process: iproute2 keeps it alive with an nsfs bind mount
at ``/run/netns/<name>`` (after making /run/netns a shared mount, so runc's and nsenter's mount namespaces see
it), and every tool that knows ``ip netns`` (``ip netns exec``, ``nsenter --net=``, runc's
``namespaces[].path``) can join it. We drive iproute2 rather than re-implementing that dance with ctypes:
forking a threaded asyncio process to ``unshare`` is unsafe, and ``ip`` costs a few milliseconds.

Creation is idempotent (an existing namespace is reused, a leftover placeholder file from a crash is
replaced), and so is deletion, so callers can retry after any failure.
"""

from __future__ import annotations

import os

from .base import NetworkError
from .command import CommandError, run

NETNS_DIR = "/run/netns"
IP = "ip"


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


def dir_is_mounted(netns_dir: str = NETNS_DIR) -> bool:
    """True once ``ip netns`` has made ``netns_dir`` its own (shared) mount point."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            return any(line.split()[4] == netns_dir for line in f)
    except OSError:
        return False


async def prepare(probe_name: str, *, timeout: float = 30.0) -> None:
    """Let iproute2 make /run/netns a shared mount point once, before Pods are set up concurrently.

    The first ``ip netns add`` after boot bind-mounts /run/netns onto itself; two of them racing can stack
    two such mounts and hide the first one's namespace under the second. Creating and deleting a probe
    namespace up front, alone, avoids that.
    """
    if dir_is_mounted():
        return
    await create(probe_name, loopback_up=False, timeout=timeout)
    await delete(probe_name, timeout=timeout)


async def create(name: str, *, loopback_up: bool = True, timeout: float = 30.0) -> str:
    """Create ``/run/netns/<name>`` (reusing a live one), bring its ``lo`` up; returns the path."""
    ns_path = path(name)
    if not is_mounted(ns_path):
        if os.path.lexists(ns_path):
            os.unlink(ns_path)  # placeholder left by a crash between create and mount
        try:
            await run([IP, "netns", "add", name], timeout=timeout, check=True)
        except CommandError as e:
            if not is_mounted(ns_path):  # a concurrent creator winning the race is fine
                raise NetworkError(f"creating network namespace {name}: {e}") from e
    if loopback_up:
        try:
            await run([IP, "-n", name, "link", "set", "lo", "up"], timeout=timeout, check=True)
        except CommandError as e:
            raise NetworkError(f"bringing up lo in network namespace {name}: {e}") from e
    return ns_path


async def delete(name: str, *, timeout: float = 30.0) -> None:
    """Remove the namespace; interfaces inside it (the Pod's veth end) go with it. Missing is fine."""
    ns_path = path(name)
    if not os.path.lexists(ns_path):
        return
    result = await run([IP, "netns", "delete", name], timeout=timeout)
    if not result.ok and os.path.lexists(ns_path):
        raise NetworkError(f"deleting network namespace {name}: {result.describe()}")


def exec_argv(name: str, argv: list[str]) -> list[str]:
    """``argv`` run inside the namespace (``ip netns exec``, which also gives it a matching /sys)."""
    _validate(name)
    return [IP, "netns", "exec", name, *argv]
