"""The per-container supervisor of the process runtime: ``python3 -S process_shim.py CONTAINER_DIR`` (or ``-``).

It is the native runtime's shim (``shim.py``: CRI log, ``attach.sock``, ``exit.json``, the spare-shim start-up
protocol) with one difference: instead of ``runc create`` it starts the container's process itself, as a plain
host process. So a container outlives the agent exactly as a native one does, and ``recover`` re-adopts it by
watching the same shim. Started by file path with ``-S``, it imports ``shim`` from its own directory.

What it reads in CONTAINER_DIR besides ``shim.conf`` (``log_path``, ``tty``, ``stdin``, ``stdin_once``, ``cwd``):
``argv`` and ``env``, NUL-separated (values may hold newlines). The process:

* runs in a session and process group of its own (its pid is the group id), with the container's argv, env
  and working directory, stdio on pipes (or, with ``tty``, on a pseudo-terminal that becomes its controlling
  terminal); SIGPIPE and SIGXFSZ back to their defaults;
* if it cannot start (no such program, bad working directory) the shim reports ``error exec: ...`` and the
  agent's start call fails with that message, as runc's would;
* when it exits, whatever is left of its process group and any orphan the shim (a child subreaper) inherited
  is killed, as the end of a container's PID namespace kills everything in it; then ``exit.json`` is written.
"""

import _signal
import os

if __package__:
    from . import shim as base
else:  # run as a script: shim.py sits beside this file, on sys.path[0]
    import shim as base  # type: ignore[no-redef]

TIOCSCTTY = 0x540E
KILL_ROUNDS = 20


def read_nul(path: str) -> list:
    with open(path, "rb") as f:
        data = f.read()
    return [item.decode() for item in data.split(b"\0")[:-1]] if data else []


def start_error(err: OSError, argv: list, cwd: str) -> str:
    """The message runc would give for a process that could not start."""
    if isinstance(err, FileNotFoundError) and err.filename == cwd:
        return f'chdir to cwd ("{cwd}") set in config.json failed: no such file or directory'
    if isinstance(err, FileNotFoundError):
        return f'exec: "{argv[0]}": executable file not found in $PATH'
    return f'exec: "{argv[0]}": {err.strerror or err}'


def child_exec(argv: list, env: dict, cwd: str, stdio: tuple, tty: int, err_w: int) -> None:
    """In the forked child: become a session leader, take the terminal, exec; on failure report and exit."""
    try:
        os.setsid()
        if tty >= 0:
            import fcntl
            fcntl.ioctl(tty, TIOCSCTTY, 0)
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
        _signal.signal(_signal.SIGXFSZ, _signal.SIG_DFL)
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        try:
            os.chdir(cwd)
        except FileNotFoundError as err:
            err.filename = cwd
            raise
        os.execvpe(argv[0], argv, env)
    except OSError as err:
        os.write(err_w, start_error(err, argv, cwd).encode())
    except BaseException as err:  # the child must never return into the shim's code
        os.write(err_w, f"exec: {err}".encode())
    os._exit(127)


class ProcessShim(base.Shim):
    def __init__(self, conf: dict) -> None:
        super().__init__(conf)
        os.set_blocking(self.wakeup_r, False)  # the process may still run when the loop first looks for exits

    def create(self) -> None:
        conf = self.conf
        argv = read_nul("argv")
        env = dict(item.partition("=")[::2] for item in read_nul("env"))
        cwd = conf.get("cwd") or "/"
        devnull = os.open(os.devnull, os.O_RDWR)
        tty = -1
        if conf.get("tty") == "1":
            self.master, tty = os.openpty()
            self.stdin_fd = self.master
            stdio = (tty, tty, tty)
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            in_r = devnull
            if conf.get("stdin") == "1":
                in_r, self.stdin_fd = os.pipe()
            stdio = (in_r, out_w, err_w)
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            child_exec(argv, env, cwd, stdio, tty, report_w)
        os.close(report_w)
        for fd in {*stdio, devnull}:
            os.close(fd)
        message = b""
        while chunk := os.read(report_r, 4096):
            message += chunk
        os.close(report_r)
        if message:
            os.waitpid(pid, 0)
            raise RuntimeError(message.decode(errors="replace"))
        self.streams = {self.master: b"stdout"} if tty >= 0 else {out_r: b"stdout", err_r: b"stderr"}
        self.init_pid = pid
        base.write_file("init.pid", f"{pid}\n")

    def reap(self, fd: int) -> None:
        before = self.status
        super().reap(fd)
        if before is None and self.status is not None:
            self.kill_rest()

    def kill_rest(self) -> None:
        """Kill the process group and the orphans this subreaper inherited, until none are left."""
        me = str(os.getpid())
        for _ in range(KILL_ROUNDS):
            left = False
            try:
                os.killpg(self.init_pid, 9)
                left = True
            except (ProcessLookupError, PermissionError):
                pass
            for pid in children(me):
                try:
                    os.kill(pid, 9)
                    left = True
                except ProcessLookupError:
                    pass
            self.reap_quietly()
            if not left:
                return
            base.time.sleep(0.01)

    def reap_quietly(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return


def children(parent: str) -> list:
    """Pids whose parent is ``parent`` (from /proc/<pid>/stat)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(b")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == parent.encode() and fields[0] != b"Z":
            found.append(int(name))
    return found


def main() -> None:
    """The native shim's main with this class: ``shim.main`` builds a ``shim.Shim``, so that name is pointed
    here first (this process runs one shim and nothing else)."""
    base.Shim = ProcessShim  # type: ignore[misc]
    base.main()


if __name__ == "__main__":
    main()
