"""Exec and attach on the fake runtime: a handful of shell built-ins, interpreted, so nothing runs on the host.

A simulated container has no processes, yet ``kubectl exec``, ``kubectl attach`` and the Python client's
``stream()`` should work against simulated nodes end to end (exit codes, stdin, tty resizes). So the fake
runtime answers exec with a tiny interpreter of these commands (a path such as ``/bin/echo`` means ``echo``):

* ``echo [-n] WORD...``, ``true``, ``false``, ``exit [N]``, ``sleep SECONDS``, ``hostname`` (the Pod's name),
  ``cat`` (stdin to stdout until stdin closes; ``cat FILE`` fails: there are no files), ``stty size`` (the
  terminal's rows and columns, after resizes; fails without a tty);
* ``sh``/``bash``/``ash`` ``-c SCRIPT``: SCRIPT is those commands joined by ``;``, ``&&``, ``||`` or newlines,
  with shell quoting and the redirections ``>&2``, ``2>&1``, ``>/dev/null``, ``2>/dev/null`` (any other file
  swallows the output: there are no files); ``sh`` without ``-c`` reads its script line by line from stdin.

Any other command fails as runc fails on a missing binary (``executable file not found in $PATH``), raised from
``start_exec`` before any output; inside ``sh`` it prints ``sh: 1: NAME: not found`` and yields 127. With a tty,
stderr joins stdout and newlines go out as CRLF, as a terminal's ``onlcr`` does, and the command starts once
the client has sent its terminal size (or after 0.2 s), so ``kubectl exec -it pod -- stty size`` is right.

``attach`` sees the container's "main process" as one that echoes its stdin to stdout until the container exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable

from .interface import RuntimeFailure

BUILTINS = frozenset({"echo", "true", "false", "exit", "sleep", "hostname", "cat", "stty", "sh", "bash", "ash"})
SHELLS = frozenset({"sh", "bash", "ash"})
STDOUT, STDERR = 1, 2
INITIAL_SIZE_WAIT = 0.2  # seconds a command with a tty waits for the client's first resize


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def command_name(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def check_command(argv: list[str]) -> None:
    """Raise as runc does when ``argv[0]`` is not something the fake runtime can run."""
    if not argv:
        raise RuntimeFailure("OCI runtime exec failed: exec failed: unable to start container process: "
                             "exec: no command given: unknown")
    if command_name(argv[0]) not in BUILTINS:
        raise RuntimeFailure(f'OCI runtime exec failed: exec failed: unable to start container process: exec: '
                             f'"{argv[0]}": executable file not found in $PATH: unknown (the fake runtime runs '
                             f'only {", ".join(sorted(BUILTINS))})')


def redirections(words: list[str]) -> tuple[list[str], dict[int, int | None]]:
    """Split ``echo x >&2`` into the command and where its fds go (1 or 2, None: discarded)."""
    out: list[str] = []
    where: dict[int, int | None] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word in (">", ">>", ">&") and i + 1 < len(words):
            fd = 1
            if out and out[-1] in ("1", "2"):
                fd = int(out.pop())
            target = words[i + 1]
            if word == ">&":
                where[fd] = int(target) if target in ("1", "2") else None
            else:
                where[fd] = {"/dev/stdout": 1, "/dev/stderr": 2}.get(target)
            i += 2
            continue
        out.append(word)
        i += 1
    return out, where


def parse_script(script: str) -> list[tuple[str, list[str]]]:
    """``a; b && c || d`` → [(";", a), ("&&", b), ("||", c)...]: each command with the operator before it."""
    lexer = shlex.shlex(script.replace("\n", ";"), posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    commands: list[tuple[str, list[str]]] = []
    joiner, words = ";", list[str]()
    for token in lexer:
        if token in (";", "&&", "||"):
            if words:
                commands.append((joiner, words))
            joiner, words = token, []
        else:
            words.append(token)
    if words:
        commands.append((joiner, words))
    return commands


class FakeExecSession:
    """One exec (or attach) on a simulated container; implements the runtime's ``ExecSession``."""

    def __init__(self, *, stdin: bool, tty: bool, hostname: str) -> None:
        self.tty = tty
        self.hostname = hostname
        self.size = (80, 24)  # (width, height)
        self._sized = asyncio.Event()
        self._stdin: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._pending = b""
        self._eof = not stdin
        self._out: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self._task: asyncio.Task[int] | None = None
        self._redirect: dict[int, int | None] = {}

    def start(self, main: Callable[[], Awaitable[int]]) -> FakeExecSession:
        self._task = asyncio.get_running_loop().create_task(self._main(main))
        return self

    async def _main(self, main: Callable[[], Awaitable[int]]) -> int:
        try:
            if self.tty:
                # A real process takes a moment to start; clients send their terminal's size at once.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._sized.wait(), INITIAL_SIZE_WAIT)
            return await main()
        except _Exit as done:
            return done.code
        finally:
            self._out.put_nowait(None)

    # -- ExecSession ------------------------------------------------------------------------------------
    async def write_stdin(self, data: bytes) -> None:
        if data:
            self._stdin.put_nowait(data)

    async def close_stdin(self) -> None:
        self._stdin.put_nowait(None)

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while (item := await self._out.get()) is not None:
            yield item

    async def resize(self, width: int, height: int) -> None:
        self.size = (width, height)
        self._sized.set()

    async def wait(self) -> int:
        assert self._task is not None
        return await asyncio.shield(self._task)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    # -- I/O for the built-ins --------------------------------------------------------------------------
    def emit(self, stream: int, data: bytes) -> None:
        if stream in self._redirect:
            target = self._redirect[stream]
            if target is None:
                return
            stream = target
        if self.tty:
            stream, data = STDOUT, data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if data:
            self._out.put_nowait((stream, data))

    def say(self, stream: int, text: str) -> None:
        self.emit(stream, text.encode())

    async def read(self) -> bytes | None:
        """The next chunk of stdin, or None once it is closed."""
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        if self._eof:
            return None
        chunk = await self._stdin.get()
        if chunk is None:
            self._eof = True
        return chunk

    async def read_line(self) -> bytes | None:
        while b"\n" not in self._pending:
            chunk = await self.read()
            if chunk is None:
                line, self._pending = self._pending, b""
                return line or None
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    # -- the interpreter --------------------------------------------------------------------------------
    async def run(self, argv: list[str]) -> int:
        return await self.command(argv, shell=False)

    async def command(self, words: list[str], *, shell: bool) -> int:
        outer = self._redirect
        if shell:
            words, where = redirections(words)
            if not words:
                return 0
            self._redirect = {fd: outer.get(t, t) if t is not None else None for fd, t in where.items()} | {
                fd: t for fd, t in outer.items() if fd not in where}
        try:
            builtin = _BUILTINS.get(command_name(words[0]))
            if builtin is None:
                self.say(STDERR, f"sh: 1: {words[0]}: not found\n")
                return 127
            return await builtin(self, words[1:])
        finally:
            self._redirect = outer

    async def script(self, text: str) -> int:
        status = 0
        for joiner, words in parse_script(text):
            if (joiner == "&&" and status != 0) or (joiner == "||" and status == 0):
                continue
            status = await self.command(words, shell=True)
        return status


async def _echo(s: FakeExecSession, args: list[str]) -> int:
    newline = "\n"
    if args and args[0] == "-n":
        args, newline = args[1:], ""
    s.say(STDOUT, " ".join(args) + newline)
    return 0


async def _true(s: FakeExecSession, args: list[str]) -> int:
    return 0


async def _false(s: FakeExecSession, args: list[str]) -> int:
    return 1


async def _exit(s: FakeExecSession, args: list[str]) -> int:
    try:
        code = int(args[0]) if args else 0
    except ValueError:
        s.say(STDERR, f"sh: 1: exit: Illegal number: {args[0]}\n")
        code = 2
    raise _Exit(code & 0xFF)


async def _sleep(s: FakeExecSession, args: list[str]) -> int:
    try:
        seconds = float(args[0].rstrip("s")) if args else -1.0
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        s.say(STDERR, f"sleep: invalid time interval '{args[0] if args else ''}'\n")
        return 1
    await asyncio.sleep(seconds)
    return 0


async def _hostname(s: FakeExecSession, args: list[str]) -> int:
    s.say(STDOUT, s.hostname + "\n")
    return 0


async def _cat(s: FakeExecSession, args: list[str]) -> int:
    files = [a for a in args if a != "-"]
    if files:
        for name in files:
            s.say(STDERR, f"cat: {name}: No such file or directory\n")
        return 1
    while (chunk := await s.read()) is not None:
        s.emit(STDOUT, chunk)
    return 0


async def _stty(s: FakeExecSession, args: list[str]) -> int:
    if not s.tty:
        s.say(STDERR, "stty: 'standard input': Inappropriate ioctl for device\n")
        return 1
    if args == ["size"]:
        s.say(STDOUT, f"{s.size[1]} {s.size[0]}\n")
    return 0


async def _sh(s: FakeExecSession, args: list[str]) -> int:
    if args[:1] == ["-c"]:
        return await s.script(args[1]) if len(args) > 1 else 0
    if args:
        s.say(STDERR, f"sh: 0: cannot open {args[0]}: No such file\n")
        return 2
    status = 0
    while (line := await s.read_line()) is not None:
        status = await s.script(line.decode(errors="replace"))
    return status


_BUILTINS: dict[str, Callable[[FakeExecSession, list[str]], Awaitable[int]]] = {
    "echo": _echo, "true": _true, "false": _false, "exit": _exit, "sleep": _sleep, "hostname": _hostname,
    "cat": _cat, "stty": _stty, "sh": _sh, "bash": _sh, "ash": _sh,
}


def start_exec(argv: list[str], *, stdin: bool, tty: bool, hostname: str) -> FakeExecSession:
    """Run ``argv`` on the interpreter; raises ``RuntimeFailure`` for a command it does not know."""
    check_command(argv)
    session = FakeExecSession(stdin=stdin, tty=tty, hostname=hostname)
    return session.start(lambda: session.run(argv))


def start_attach(exited: asyncio.Future[int], *, stdin: bool, tty: bool, hostname: str) -> FakeExecSession:
    """Attach to a simulated main process: stdin echoes to stdout until the container exits (its exit code)."""
    session = FakeExecSession(stdin=stdin, tty=tty, hostname=hostname)

    async def main() -> int:
        echo = asyncio.get_running_loop().create_task(_cat(session, []))
        try:
            return await exited  # cancelling the session stops waiting for the container
        finally:
            echo.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await echo

    return session.start(main)
