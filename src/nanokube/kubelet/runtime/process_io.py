"""The process runtime's host-side helpers: what a container runs, exec beside it, signals, stats, images.

Split from ``process.py`` so that file keeps the CRI calls. Everything here works on plain host processes:

* ``launch`` turns a ``ContainerConfig`` into the argv, environment and working directory of a host process
  (``command`` + ``args``, the host image's ``PATH``, ``HOSTNAME``, the container's env), refusing clearly what
  cannot run without an image filesystem: no command, a program not on this host, a missing working directory.
* ``exec_sync`` / ``exec`` run a command with a container's environment and working directory, in a session of
  its own (pipes, or a pseudo-terminal that becomes its controlling terminal through util-linux ``setsid -c``).
* ``connect`` is port-forward: a TCP connection to the Pod's address.
* ``group_stats`` sums CPU time and resident memory over a container's process group from ``/proc``.
* Images: the host image is itself; any other image name stands for the host too (nothing is pulled or
  unpacked), so a container on ``busybox`` with a command runs that command from the host, and one that needs
  the image's own files fails at creation with a message that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from .fake import image_digest, normalize_image
from .interface import ContainerConfig, CreateContainerFailure, ExecResult, Image, RuntimeFailure
from .rootfs import DEFAULT_PATH, HOST_IMAGE, HOST_IMAGE_RECORD, is_host_image
from .streams import PipeExecSession, SocketStream, TtyExecSession

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str


def launch(config: ContainerConfig, hostname: str) -> Launch:
    """What a container runs on this host; CreateContainerFailure when it cannot run here."""
    argv = [*config.command, *config.args]
    image = config.image
    if not argv:
        raise CreateContainerFailure(
            f'the process runtime cannot run image "{image}" without a command: images are not unpacked here, '
            f"containers run programs of this host (give the container a command, e.g. on {HOST_IMAGE})")
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    env.update(dict(config.envs))
    program = argv[0]
    found = program if "/" in program else shutil.which(program, path=env["PATH"])
    if found is None or not os.access(found, os.X_OK) or os.path.isdir(found):
        where = "" if is_host_image(image) else f' (image "{image}" is not unpacked by the process runtime)'
        raise CreateContainerFailure(f'exec: "{program}": executable file not found in $PATH on this host{where}')
    cwd = config.working_dir or "/"
    if not os.path.isdir(cwd):
        raise CreateContainerFailure(f'working directory "{cwd}" does not exist on this host')
    return Launch(argv, env, cwd)


def write_launch(directory: Path, what: Launch) -> None:
    """``argv`` and ``env`` files for the shim (NUL-separated: values may hold newlines)."""
    (directory / "argv").write_bytes(b"".join(a.encode() + b"\0" for a in what.argv))
    (directory / "env").write_bytes(b"".join(f"{k}={v}".encode() + b"\0" for k, v in what.env.items()))


def read_launch(directory: Path) -> Launch:
    def items(name: str) -> list[str]:
        data = (directory / name).read_bytes()
        return [x.decode() for x in data.split(b"\0")[:-1]] if data else []

    env = dict(item.partition("=")[::2] for item in items("env"))
    cwd = "/"
    with contextlib.suppress(OSError):
        for line in (directory / "shim.conf").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "cwd":
                cwd = value
    return Launch(items("argv"), env, cwd)


# -- exec -------------------------------------------------------------------------------------------------

async def _spawn(cmd: list[str], where: Launch, **kwargs: object) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(*cmd, env=where.env, cwd=where.cwd, **kwargs)  # type: ignore[arg-type]
    except FileNotFoundError:
        raise RuntimeFailure(f'exec: "{cmd[0] if cmd else ""}": executable file not found in $PATH') from None
    except OSError as err:
        raise RuntimeFailure(f'exec: "{cmd[0]}": {err.strerror or err}') from None


async def exec_sync(where: Launch, cmd: list[str], timeout: float) -> ExecResult:
    """Run ``cmd`` to completion; after ``timeout`` seconds (0: none) its process group is killed and
    RuntimeFailure raised."""
    if not cmd:
        raise RuntimeFailure("exec: no command given")
    pipe = asyncio.subprocess.PIPE
    proc = await _spawn(cmd, where, stdin=asyncio.subprocess.DEVNULL, stdout=pipe, stderr=pipe,
                        start_new_session=True)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout or None)
    except TimeoutError:
        kill_group(proc.pid, signal.SIGKILL)
        await proc.communicate()
        raise RuntimeFailure(f"command {cmd!r} timed out after {timeout:g}s") from None
    assert proc.returncode is not None
    return ExecResult(_exit_code(proc.returncode), out, err)


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


class ProcessPipeSession(PipeExecSession):
    async def wait(self) -> int:
        return _exit_code(await self.proc.wait())


class ProcessTtySession(TtyExecSession):
    async def wait(self) -> int:
        return _exit_code(await self.proc.wait())


async def exec(where: Launch, cmd: list[str], *, stdin: bool, tty: bool) -> PipeExecSession | TtyExecSession:
    """An interactive command beside the container, in a session of its own."""
    if not cmd:
        raise RuntimeFailure("exec: no command given")
    if not tty:
        pipe = asyncio.subprocess.PIPE
        proc = await _spawn(cmd, where, stdin=pipe if stdin else asyncio.subprocess.DEVNULL, stdout=pipe,
                            stderr=pipe, start_new_session=True)
        return ProcessPipeSession(proc)
    master, slave = os.openpty()  # a cooked terminal, as a container's own tty is
    setsid = shutil.which("setsid")
    # setsid(1), not a session of asyncio's: a child that is not a group leader calls setsid() and execs the
    # command (no fork, so its exit status is the command's) after taking the terminal on stdin (-c).
    argv = [setsid, "-c", *cmd] if setsid else cmd
    try:
        proc = await _spawn(argv, where, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=setsid is None)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return ProcessTtySession(proc, master)


async def connect(host: str, port: int) -> SocketStream:
    """A TCP connection to a Pod's ``host``:``port`` (port-forward); RuntimeFailure when nothing answers."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (host, port))
    except OSError as err:
        sock.close()
        raise RuntimeFailure(f"failed to connect to {host}:{port} of the pod: {err}") from None
    reader, writer = await asyncio.open_connection(sock=sock)
    return SocketStream(reader, writer)


# -- signals and stats ------------------------------------------------------------------------------------

def kill_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False when it no longer exists."""
    if pgid <= 1:
        return False
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def group_stats(pgid: int) -> tuple[int, int]:
    """(CPU time in ns, resident bytes) summed over the processes of group ``pgid`` (blocking: /proc scan)."""
    cpu = rss = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(b")", 1)[-1].split()
        if len(fields) < 22 or int(fields[2]) != pgid:
            continue
        cpu += (int(fields[11]) + int(fields[12])) * 1_000_000_000 // CLOCK_TICKS
        rss += int(fields[21]) * PAGE_SIZE
    return cpu, rss


# -- images -----------------------------------------------------------------------------------------------

def image_record(image: str) -> Image:
    """The CRI image a container on ``image`` reports: the host image, or a stand-in named like the image."""
    if is_host_image(image):
        return HOST_IMAGE_RECORD
    name = normalize_image(image)
    digest = image_digest(f"process-host:{name}")
    repo = name.split("@", 1)[0] if "@" in name else name.rsplit(":", 1)[0]
    return Image(digest, (name,) if "@" not in name else (), (f"{repo}@{digest}",), 0)


def image_ref(image: str) -> str:
    """What a container status reports as its imageID."""
    return image_record(image).repo_digests[0]


def image_name(image: str) -> str:
    return HOST_IMAGE if is_host_image(image) else normalize_image(image)
