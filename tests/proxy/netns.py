"""Two network namespaces joined by a veth pair, for applying real nft rules without touching the host.

The client namespace holds the proxy's table (its output hook sees the client's connections); the server
namespace runs tiny TCP servers that answer with their name. Everything is named with a random id and removed
by that id, even when the test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

CLIENT_IP = "10.99.0.1"
SERVER_IP = "10.99.0.2"

SERVER = """
import socket, sys, threading
def serve(port, name):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], port)); s.listen(64)
    while True:
        c, _ = s.accept(); c.sendall(name.encode()); c.close()
for spec in sys.argv[2:]:
    port, name = spec.split("=")
    threading.Thread(target=serve, args=(int(port), name), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

CLIENT = """
import socket, sys
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(count):
    try:
        c = socket.create_connection((host, port), timeout=2); print(c.recv(64).decode() or "-"); c.close()
    except ConnectionRefusedError: print("refused")
    except OSError as e: print("error", e.errno)
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def require_root() -> None:
    assert os.geteuid() == 0, "the nft tests need root (CI runs them as root)"
    assert shutil.which("nft"), "nft is missing: apt-get install nftables"


@dataclass
class NetPair:
    client: str
    server: str
    servers: list[subprocess.Popen[str]] = field(default_factory=list)

    def nft(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.client, "nft")

    def serve(self, *specs: str) -> None:
        """Start servers in the server namespace: ``"8080=a"`` answers ``a`` on port 8080."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.server, sys.executable, "-c", SERVER, SERVER_IP, *specs],
                                stdout=subprocess.PIPE, text=True)
        self.servers.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def connect(self, host: str, port: int, count: int = 1) -> list[str]:
        out = subprocess.run(["ip", "netns", "exec", self.client, sys.executable, "-c", CLIENT, host, str(port),
                              str(count)], capture_output=True, text=True, timeout=60, check=True)
        return out.stdout.split("\n")[:-1]

    def table(self, name: str) -> str:
        out = subprocess.run([*self.nft(), "list", "table", "ip", name], capture_output=True, text=True)
        return out.stdout if out.returncode == 0 else ""


@contextmanager
def net_pair() -> Iterator[NetPair]:
    require_root()
    tag = uuid.uuid4().hex[:6]
    pair = NetPair(f"nkpx-{tag}-c", f"nkpx-{tag}-s")
    try:
        _ip("netns", "add", pair.client)
        _ip("netns", "add", pair.server)
        _ip("link", "add", f"nkpx{tag}a", "netns", pair.client, "type", "veth", "peer", "name", f"nkpx{tag}b",
            "netns", pair.server)
        for ns, link, addr in ((pair.client, f"nkpx{tag}a", CLIENT_IP), (pair.server, f"nkpx{tag}b", SERVER_IP)):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", link)
            _ip("-n", ns, "link", "set", link, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", pair.client, "route", "add", "default", "via", SERVER_IP)
        _ip("-n", pair.server, "route", "add", "default", "via", CLIENT_IP)
        yield pair
    finally:
        for proc in pair.servers:
            proc.kill()
            proc.wait()
        for ns in (pair.client, pair.server):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # takes the veth pair with it
