"""The per-container supervisor of the native runtime: ``python3 -S shim.py CONTAINER_DIR`` (or ``-``: read it
from stdin, so the agent can start a spare shim before it is needed), or forked from a long-lived
``shim.py --zygote TAG`` that reads container directories on stdin (``zygote``: what the agent uses).

One shim runs beside each container, like containerd's shim or conmon, so containers outlive the agent: the
agent may stop and restart while the shim keeps the container's output pipes open, writes its log and records
how it ended. The shim is a standalone script started by file path with ``-S``, in a session of its own and
outside the container's cgroup (its memory is not charged to the container). It imports only built-in modules
(no json, re, subprocess, or the socket and signal wrappers: each shim costs startup time and resident memory per container),
so its files are plain text and it talks to sockets through ``_socket``.

What it does, reading ``shim.conf`` (``key value`` lines) in CONTAINER_DIR, which is also the OCI bundle and its
working directory:

1. Becomes a child subreaper, then runs ``runc create`` with the container's stdio: pipes (stdout, stderr and,
   when the container has ``stdin``, stdin), or a pseudo-terminal received over ``console.sock`` for ``tty``.
   The container's init stays blocked until ``runc start``; when ``runc create`` exits the init is re-parented
   to the shim, so the shim alone can wait for it.
2. Opens ``attach.sock``, then reports one line on its stdout, ``pid N`` or ``error MESSAGE``, and closes it:
   the agent's create call returns on that line.
3. Writes everything the container prints to ``log_path`` in the CRI log format
   (``2026-11-27T18:00:26.123456789Z stdout F text``; lines over 16 KiB are split into ``P`` parts), and
   serves ``attach.sock``: frames of ``>BI`` (type, length) + payload. From a client: 0 stdin data, 1 close
   stdin, 2 resize (``>HH`` width, height). To clients: 1 stdout, 2 stderr, 3 exit (``>i`` exit code).
4. When the init exits and its output is drained, reads the cgroup's OOM-kill counters and writes
   ``exit.json`` (``exit_code`` as Kubernetes reports it, 128+signal when killed; ``signal``; ``finished_at``;
   ``oom_killed``) atomically, then exits. The agent watches the shim's pid to learn of the exit.
"""

import _signal
import _socket
import ctypes
import os
import select
import struct
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
MAX_LINE = 16 * 1024
DRAIN_SECONDS = 2.0
FRAME = struct.Struct(">BI")
STDIN, CLOSE_STDIN, RESIZE = 0, 1, 2
STDOUT, STDERR, EXIT = 1, 2, 3
TIOCSWINSZ = 0x5414
IN, HUP = select.EPOLLIN, select.EPOLLHUP | select.EPOLLERR


def read_conf(path: str) -> dict:
    """``key value`` lines; ``oom_file`` may come several times (a list), other keys once."""
    conf: dict = {"oom_file": []}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition(" ")
            if key == "oom_file":
                conf[key].append(value)
            elif key:
                conf[key] = value
    return conf


def timestamp() -> bytes:
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z").encode()


class CriLog:
    """Appends decoded output to the container's log file, one CRI line per output line."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self.pending = {b"stdout": b"", b"stderr": b""}

    def feed(self, stream: bytes, data: bytes) -> None:
        parts = (self.pending[stream] + data).split(b"\n")
        rest = parts.pop()
        prefix = timestamp() + b" " + stream + b" "
        out = []
        for line in parts:
            while len(line) > MAX_LINE:
                out.append(prefix + b"P " + line[:MAX_LINE] + b"\n")
                line = line[MAX_LINE:]
            out.append(prefix + b"F " + line + b"\n")
        while len(rest) >= MAX_LINE:
            out.append(prefix + b"P " + rest[:MAX_LINE] + b"\n")
            rest = rest[MAX_LINE:]
        self.pending[stream] = rest
        if out:
            os.write(self.fd, b"".join(out))

    def flush(self) -> None:
        for stream, rest in self.pending.items():
            if rest:
                os.write(self.fd, timestamp() + b" " + stream + b" F " + rest + b"\n")
        self.pending = {b"stdout": b"", b"stderr": b""}


def write_file(path: str, text: str) -> None:
    """Replace ``path`` atomically."""
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.rename(path + ".tmp", path)


def oom_kills(files: list) -> int:
    total = 0
    for name in files:
        try:
            with open(name) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and value.strip().isdigit():
                        total += int(value)
        except OSError:
            pass
    return total


def runc_error(stderr_fd: int) -> str:
    """The last error runc logged (the rare path: json is imported only here), else what it printed."""
    import json
    message = ""
    try:
        with open("runc.log") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("level") in ("error", "fatal"):
                    message = entry.get("msg", "")
    except OSError:
        pass
    if not message and stderr_fd >= 0:
        os.set_blocking(stderr_fd, False)
        try:
            message = os.read(stderr_fd, 65536).decode(errors="replace").strip()
        except BlockingIOError:
            pass
    return message or "runc create failed"


def unix_listener(name: str) -> _socket.socket:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    if os.path.exists(name):
        os.unlink(name)
    sock.bind(name)
    sock.listen(8)
    return sock


def receive_fd(listener: _socket.socket) -> int:
    """Accept runc's console-socket connection and take the terminal master it sends (SCM_RIGHTS)."""
    listener.settimeout(10)
    fd, _ = listener._accept()  # type: ignore[attr-defined]  # _socket's accept, returning an fd
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, fd)
    conn.settimeout(10)
    try:
        _data, ancillary, _flags, _addr = conn.recvmsg(4096, _socket.CMSG_LEN(4))
    finally:
        conn.close()
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(payload) >= 4:
            return int(struct.unpack("i", payload[:4])[0])
    raise RuntimeError("runc sent no terminal")


class Shim:
    def __init__(self, conf: dict) -> None:
        self.conf = conf
        self.epoll = select.epoll()
        self.handlers: dict = {}
        self.log = CriLog(conf["log_path"])
        self.init_pid = 0
        self.status: int | None = None
        self.exited_at = 0.0
        self.stdin_fd = -1
        self.stdin_pending = b""
        self.master = -1
        self.streams: dict = {}
        self.clients: dict = {}
        self.wakeup_r, self.wakeup_w = os.pipe()

    # -- creating the container -------------------------------------------------------------------------
    def create(self) -> None:
        conf = self.conf
        devnull = os.open(os.devnull, os.O_RDWR)
        argv = [conf["runc"], "--root", conf["root"], "--log", "runc.log", "--log-format", "json", "create",
                "--bundle", ".", "--pid-file", "init.pid"]
        console = None
        err_r = -1
        if conf.get("tty") == "1":
            console = unix_listener("console.sock")
            argv += ["--console-socket", "console.sock"]
            stdio = (devnull, devnull, devnull)
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            in_r = devnull
            if conf.get("stdin") == "1":
                in_r, self.stdin_fd = os.pipe()
            stdio = (in_r, out_w, err_w)
            self.streams = {out_r: b"stdout", err_r: b"stderr"}
        actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(stdio)]
        # Python ignores SIGPIPE; ignored signals survive exec, so reset them for runc and the container.
        pid = os.posix_spawnp(argv[0], [*argv, conf["id"]], os.environ, file_actions=actions,
                              setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ))
        _, status = os.waitpid(pid, 0)
        for fd in {*stdio, devnull}:
            os.close(fd)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(runc_error(err_r))
        if console is not None:
            self.master = self.stdin_fd = receive_fd(console)
            console.close()
            os.unlink("console.sock")
            self.streams = {self.master: b"stdout"}
        with open("init.pid") as f:
            self.init_pid = int(f.read().strip())

    # -- the loop ---------------------------------------------------------------------------------------
    def watch(self, fd: int, handler: object, events: int = IN) -> None:
        self.handlers[fd] = handler
        self.epoll.register(fd, events)

    def forget(self, fd: int) -> None:
        if self.handlers.pop(fd, None) is not None:
            self.epoll.unregister(fd)

    def listen(self) -> None:
        """Open ``attach.sock`` (before the report, so an attach right after the start finds it)."""
        self.listener = unix_listener("attach.sock")
        self.listener.setblocking(False)

    def serve(self) -> None:
        self.watch(self.listener.fileno(), self.accept)
        self.watch(self.wakeup_r, self.reap)
        for fd in self.streams:
            os.set_blocking(fd, False)
            self.watch(fd, self.read_output)
        if self.stdin_fd >= 0:
            os.set_blocking(self.stdin_fd, False)
        self.reap(self.wakeup_r)
        while not self.done():
            timeout = -1 if self.status is None else max(0.0, self.exited_at + DRAIN_SECONDS - time.time())
            for fd, _events in self.epoll.poll(timeout):
                handler = self.handlers.get(fd)
                if handler is not None:
                    handler(fd)

    def done(self) -> bool:
        if self.status is None:
            return False
        return not self.streams or time.time() >= self.exited_at + DRAIN_SECONDS

    def reap(self, _fd: int) -> None:
        try:
            os.read(self.wakeup_r, 4096)
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.init_pid and self.status is None:
                self.status, self.exited_at = status, time.time()

    def read_output(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the terminal's other side is closed
            data = b""
        if not data:
            self.forget(fd)
            stream = self.streams.pop(fd)
            if fd != self.master:
                os.close(fd)
            if self.log.pending[stream]:
                self.log.feed(stream, b"\n")
            return
        stream = self.streams[fd]
        self.log.feed(stream, data)
        self.broadcast(STDOUT if stream == b"stdout" else STDERR, data)

    # -- attach -----------------------------------------------------------------------------------------
    def accept(self, _fd: int) -> None:
        try:
            fd, _ = self.listener._accept()  # type: ignore[attr-defined]
        except BlockingIOError:
            return
        conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, fd)
        conn.settimeout(2.0)
        self.clients[fd] = (conn, b"")
        self.watch(fd, self.read_client)

    def drop(self, fd: int) -> None:
        self.forget(fd)
        conn, _ = self.clients.pop(fd, (None, b""))
        if conn is not None:
            conn.close()
        if self.conf.get("stdin_once") == "1":
            self.close_stdin()

    def broadcast(self, kind: int, data: bytes) -> None:
        frame = FRAME.pack(kind, len(data)) + data
        for fd, (conn, _) in list(self.clients.items()):
            try:
                conn.sendall(frame)
            except OSError:
                self.drop(fd)

    def read_client(self, fd: int) -> None:
        conn, buf = self.clients[fd]
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.drop(fd)
            return
        buf += data
        while len(buf) >= FRAME.size:
            kind, size = FRAME.unpack_from(buf)
            if len(buf) < FRAME.size + size:
                break
            payload, buf = buf[FRAME.size:FRAME.size + size], buf[FRAME.size + size:]
            self.handle_frame(kind, payload)
        if fd in self.clients:
            self.clients[fd] = (conn, buf)

    def handle_frame(self, kind: int, payload: bytes) -> None:
        if kind == STDIN and self.stdin_fd >= 0:
            self.stdin_pending += payload
            self.flush_stdin(self.stdin_fd)
        elif kind == CLOSE_STDIN:
            self.close_stdin()
        elif kind == RESIZE and self.master >= 0 and len(payload) == 4:
            import fcntl
            width, height = struct.unpack(">HH", payload)
            fcntl.ioctl(self.master, TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def flush_stdin(self, _fd: int) -> None:
        try:
            written = os.write(self.stdin_fd, self.stdin_pending)
        except BlockingIOError:
            written = 0
        except OSError:
            self.stdin_pending, written = b"", 0
        self.stdin_pending = self.stdin_pending[written:]
        if self.master >= 0:  # the terminal is registered for output already; small writes go through
            return
        if self.stdin_pending and self.stdin_fd not in self.handlers:
            self.watch(self.stdin_fd, self.flush_stdin, select.EPOLLOUT)
        elif not self.stdin_pending:
            self.forget(self.stdin_fd)

    def close_stdin(self) -> None:
        if self.master >= 0:
            try:
                os.write(self.master, b"\x04")
            except OSError:
                pass
        elif self.stdin_fd >= 0:
            self.forget(self.stdin_fd)
            os.close(self.stdin_fd)
            self.stdin_fd = -1

    # -- the end ----------------------------------------------------------------------------------------
    def finish(self) -> None:
        self.log.flush()
        status = self.status if self.status is not None else 255 << 8
        code = os.waitstatus_to_exitcode(status)
        signum = -code if code < 0 else 0
        exit_code = 128 + signum if code < 0 else code
        oom = oom_kills(self.conf["oom_file"])
        write_file("exit.json", f'{{"exit_code": {exit_code}, "signal": {signum}, '
                                f'"finished_at": {time.time()!r}, "oom_killed": {"true" if oom else "false"}}}')
        self.broadcast(EXIT, struct.pack(">i", exit_code))
        for conn, _ in list(self.clients.values()):
            conn.close()
        if os.path.exists("attach.sock"):
            os.unlink("attach.sock")


REPORT_PREFIX = ""  # a shim forked by the zygote prefixes its report with its directory and pid
REPORTED = False


def report(message: str) -> None:
    """Tell the agent how creation went (one line), then let go of its pipe."""
    global REPORTED
    REPORTED = True
    line = REPORT_PREFIX + message.replace("\n", " ")[:3000] + "\n"  # under PIPE_BUF: one atomic write
    try:
        os.write(1, line.encode(errors="replace"))
    except OSError:
        pass
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)


def read_line(fd: int) -> bytes:
    """One line from ``fd`` (b"" when it closes first)."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            return b""
        line += chunk
    return line


def enter(directory: str) -> None:
    """Work in the container's directory: stdin from /dev/null, stderr to ``shim.log``, normal priority (a
    spare or the zygote starts niced)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:
        pass
    os.chdir(directory)
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open("shim.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(null, 0)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def run() -> None:
    """Supervise the container of the current directory until it ends (see the module docstring)."""
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    shim = Shim(read_conf("shim.conf"))
    os.set_blocking(shim.wakeup_w, False)
    _signal.set_wakeup_fd(shim.wakeup_w)
    _signal.signal(_signal.SIGCHLD, lambda _s, _f: None)
    try:
        shim.create()
    except Exception as err:
        report("error " + (str(err) or type(err).__name__))
        sys.exit(1)
    shim.listen()
    report(f"pid {shim.init_pid}")
    shim.serve()
    shim.finish()


def zygote() -> None:
    """``shim.py --zygote TAG``: fork a shim for each container directory read from stdin, until stdin closes.

    A forked shim starts in a fraction of a millisecond and shares the interpreter's pages with its zygote,
    where a new interpreter costs about 10 ms of CPU and its own few MiB. The zygote is single-threaded (so
    forking it is safe) and lets the kernel reap its children (SIGCHLD ignored); each child makes itself a
    session leader, restores SIGCHLD, and reports ``NAME SHIM_PID pid N`` or ``NAME SHIM_PID error MESSAGE``
    on the shared stdout (NAME: the directory's last component, the container id), one atomic write. Right
    after each fork the zygote says ``NAME SHIM_PID forked``, so the agent knows which process to kill should
    creation hang."""
    global REPORT_PREFIX
    _signal.signal(_signal.SIGCHLD, _signal.SIG_IGN)
    while True:
        line = read_line(0)
        if not line:
            return  # the agent went away
        directory = line.decode().strip()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setsid()
                _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
                REPORT_PREFIX = f"{os.path.basename(directory)} {os.getpid()} "
                enter(directory)
                run()
                code = 0
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else 1
            except BaseException as err:  # the agent waits for a report: it must get one
                if not REPORTED:
                    report("error shim: " + (str(err) or type(err).__name__))
            finally:
                os._exit(code)
        try:
            os.write(1, f"{os.path.basename(directory)} {pid} forked\n".encode())
        except OSError:
            return


def main() -> None:
    """``shim.py DIRECTORY``, ``shim.py - TAG`` (a spare: the directory comes on stdin) or ``--zygote TAG``."""
    if sys.argv[1] == "--zygote":
        zygote()
        return
    directory = sys.argv[1]
    if directory == "-":
        line = read_line(0)
        if not line:
            sys.exit(0)  # the agent went away without using this spare
        directory = line.decode().strip()
    enter(directory)
    run()


if __name__ == "__main__":
    main()
