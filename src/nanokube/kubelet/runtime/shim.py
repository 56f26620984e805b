"""The per-container supervisor of the native runtime: ``python3 -S shim.py CONTAINER_DIR``.

One shim runs beside each container, like containerd's shim or conmon, so containers outlive the agent: the
agent may stop and restart while the shim keeps the container's output pipes open, writes its log and records
how it ended. The shim is a standalone script (stdlib only, started with ``-S`` by file path: about 8 ms and a
few MB), in its own session, and is not in the container's cgroup, so its memory is not charged to the limit.

What it does, reading ``shim.json`` in CONTAINER_DIR (which is also the OCI bundle and its working directory):

1. Becomes a child subreaper, then runs ``runc create`` with the container's stdio: pipes (stdout, stderr and,
   when the container has ``stdin``, stdin), or a pseudo-terminal received over ``console.sock`` for ``tty``.
   The container's init process stays blocked until ``runc start``; when ``runc create`` exits the init is
   re-parented to the shim, so the shim alone can wait for it.
2. Reports one JSON line on its stdout, ``{"pid": N}`` or ``{"error": "..."}``, and closes it: the agent's
   create call returns on that line.
3. Writes everything the container prints to ``log_path`` in the CRI log format
   (``2026-11-27T18:00:26.123456789Z stdout F text``; lines over 16 KiB are split into ``P`` parts), and
   serves ``attach.sock``: frames of ``>BI`` (type, length) + payload. From a client: 0 stdin data, 1 close
   stdin, 2 resize (``>HH`` width, height). To clients: 1 stdout, 2 stderr, 3 exit (``>i`` exit code).
4. When the init exits and its output is drained, reads the cgroup's OOM-kill counters and writes
   ``exit.json`` (``exit_code`` as Kubernetes reports it, 128+signal when killed; ``signal``; ``finished_at``;
   ``oom_killed``) atomically, then exits. The agent watches the shim's pid to learn of the exit.
"""

import ctypes
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
MAX_LINE = 16 * 1024
DRAIN_SECONDS = 2.0
FRAME = struct.Struct(">BI")
STDIN, CLOSE_STDIN, RESIZE = 0, 1, 2
STDOUT, STDERR, EXIT = 1, 2, 3


def timestamp() -> bytes:
    now = time.time_ns()
    seconds, nanos = divmod(now, 1_000_000_000)
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


def write_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


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
    """The last error runc logged, else what it printed."""
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


class Shim:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.sel = selectors.DefaultSelector()
        self.log = CriLog(config["log_path"])
        self.init_pid = 0
        self.status: int | None = None
        self.exited_at = 0.0
        self.stdin_fd = -1
        self.stdin_pending = b""
        self.master = -1
        self.streams: dict[int, bytes] = {}
        self.clients: dict[socket.socket, bytes] = {}
        self.listener: socket.socket | None = None
        self.wakeup_r, self.wakeup_w = os.pipe()

    # -- creating the container -------------------------------------------------------------------------
    def create(self) -> None:
        cfg = self.config
        devnull = os.open(os.devnull, os.O_RDWR)
        console = None
        argv = [cfg["runc"], "--root", cfg["root"], "--log", "runc.log", "--log-format", "json", "create",
                "--bundle", ".", "--pid-file", "init.pid"]
        err_r = -1
        if cfg.get("tty"):
            console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            console.bind("console.sock")
            console.listen(1)
            argv += ["--console-socket", "console.sock"]
            stdio = (devnull, devnull, devnull)
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            in_r = devnull
            if cfg.get("stdin"):
                in_r, self.stdin_fd = os.pipe()
            stdio = (in_r, out_w, err_w)
            self.streams = {out_r: b"stdout", err_r: b"stderr"}
        proc = subprocess.Popen([*argv, cfg["id"]], stdin=stdio[0], stdout=stdio[1], stderr=stdio[2],
                                close_fds=True)
        code = proc.wait()
        for fd in set(stdio):
            os.close(fd)
        if code != 0:
            raise RuntimeError(runc_error(err_r))
        if console is not None:
            console.settimeout(10)
            conn, _ = console.accept()
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
            conn.close()
            console.close()
            os.unlink("console.sock")
            self.master = self.stdin_fd = fds[0]
            self.streams = {self.master: b"stdout"}
        with open("init.pid") as f:
            self.init_pid = int(f.read().strip())

    # -- the loop ---------------------------------------------------------------------------------------
    def serve(self) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists("attach.sock"):
            os.unlink("attach.sock")
        self.listener.bind("attach.sock")
        self.listener.listen(8)
        self.sel.register(self.listener, selectors.EVENT_READ, self.accept)
        self.sel.register(self.wakeup_r, selectors.EVENT_READ, self.reap)
        for fd in self.streams:
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, self.read_output)
        if self.stdin_fd >= 0 and self.master < 0:
            os.set_blocking(self.stdin_fd, False)
        self.reap(self.wakeup_r)
        while not self.done():
            timeout = None if self.status is None else max(0.0, self.exited_at + DRAIN_SECONDS - time.time())
            for key, _ in self.sel.select(timeout):
                key.data(key.fileobj)

    def done(self) -> bool:
        if self.status is None:
            return False
        return not self.streams or time.time() >= self.exited_at + DRAIN_SECONDS

    def reap(self, _fd: object) -> None:
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

    def read_output(self, fd: object) -> None:
        assert isinstance(fd, int)
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the terminal's other side is closed
            data = b""
        if not data:
            self.sel.unregister(fd)
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
    def accept(self, listener: object) -> None:
        assert self.listener is not None
        conn, _ = self.listener.accept()
        conn.settimeout(2.0)
        self.clients[conn] = b""
        self.sel.register(conn, selectors.EVENT_READ, self.read_client)

    def drop(self, conn: socket.socket) -> None:
        self.sel.unregister(conn)
        self.clients.pop(conn, None)
        conn.close()
        if self.config.get("stdin_once"):
            self.close_stdin()

    def broadcast(self, kind: int, data: bytes) -> None:
        frame = FRAME.pack(kind, len(data)) + data
        for conn in list(self.clients):
            try:
                conn.sendall(frame)
            except OSError:
                self.drop(conn)

    def read_client(self, conn: object) -> None:
        assert isinstance(conn, socket.socket)
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.drop(conn)
            return
        buf = self.clients[conn] + data
        while len(buf) >= FRAME.size:
            kind, size = FRAME.unpack_from(buf)
            if len(buf) < FRAME.size + size:
                break
            payload, buf = buf[FRAME.size:FRAME.size + size], buf[FRAME.size + size:]
            self.handle_frame(kind, payload)
        if conn in self.clients:
            self.clients[conn] = buf

    def handle_frame(self, kind: int, payload: bytes) -> None:
        if kind == STDIN and self.stdin_fd >= 0:
            self.stdin_pending += payload
            self.flush_stdin(self.stdin_fd)
        elif kind == CLOSE_STDIN:
            self.close_stdin()
        elif kind == RESIZE and self.master >= 0 and len(payload) == 4:
            import fcntl
            import termios
            width, height = struct.unpack(">HH", payload)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def flush_stdin(self, _fd: object) -> None:
        try:
            written = os.write(self.stdin_fd, self.stdin_pending)
        except BlockingIOError:
            written = 0
        except OSError:
            self.stdin_pending = b""
            written = 0
        self.stdin_pending = self.stdin_pending[written:]
        if self.master >= 0:
            return
        try:
            if self.stdin_pending:
                self.sel.register(self.stdin_fd, selectors.EVENT_WRITE, self.flush_stdin)
            else:
                self.sel.unregister(self.stdin_fd)
        except (KeyError, ValueError):
            pass

    def close_stdin(self) -> None:
        if self.master >= 0:
            try:
                os.write(self.master, b"\x04")
            except OSError:
                pass
        elif self.stdin_fd >= 0:
            try:
                self.sel.unregister(self.stdin_fd)
            except (KeyError, ValueError):
                pass
            os.close(self.stdin_fd)
            self.stdin_fd = -1

    # -- the end ----------------------------------------------------------------------------------------
    def finish(self) -> None:
        self.log.flush()
        status = self.status if self.status is not None else 255 << 8
        code = os.waitstatus_to_exitcode(status)
        signum = -code if code < 0 else 0
        exit_code = 128 + signum if code < 0 else code
        write_json("exit.json", {"exit_code": exit_code, "signal": signum, "finished_at": time.time(),
                                 "oom_killed": oom_kills(self.config.get("oom_files", [])) > 0})
        self.broadcast(EXIT, struct.pack(">i", exit_code))
        for conn in list(self.clients):
            conn.close()
        if os.path.exists("attach.sock"):
            os.unlink("attach.sock")


def main() -> None:
    os.chdir(sys.argv[1])
    with open("shim.json") as f:
        config = json.load(f)
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    shim = Shim(config)
    os.set_blocking(shim.wakeup_w, False)
    signal.set_wakeup_fd(shim.wakeup_w)
    signal.signal(signal.SIGCHLD, lambda _s, _f: None)
    try:
        shim.create()
    except Exception as err:
        report({"error": str(err) or type(err).__name__})
        sys.exit(1)
    report({"pid": shim.init_pid})
    shim.serve()
    shim.finish()


def report(message: dict) -> None:
    """Tell the agent how creation went, then let go of its pipe."""
    try:
        os.write(1, (json.dumps(message) + "\n").encode())
    except OSError:
        pass
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)


if __name__ == "__main__":
    main()
