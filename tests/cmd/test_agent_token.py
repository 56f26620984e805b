"""The node token and how an agent comes to trust the cluster's CA with it."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nanokube.cmd.agent import fetch_ca
from nanokube.cmd.cluster import StartupError
from nanokube.util.certs import (
    ca_hash,
    ensure_node_token,
    ensure_pki,
    kubelet_credential,
    parse_node_token,
)


def test_node_token_is_made_once_and_names_the_ca(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki", ["127.0.0.1"])
    token = ensure_node_token(tmp_path / "node-token", pki.ca_cert)
    parsed = parse_node_token(token)
    assert token.startswith("K10") and parsed.ca_hash == ca_hash(pki.ca_cert.read_bytes())
    assert len(parsed.secret) >= 32
    assert (tmp_path / "node-token").stat().st_mode & 0o077 == 0
    assert ensure_node_token(tmp_path / "node-token", pki.ca_cert) == token  # survives restarts
    # The kubelet credential is derived, stable, and is not the token.
    assert kubelet_credential(token) == kubelet_credential(token) != token
    other = ensure_node_token(tmp_path / "other-token", pki.ca_cert)
    assert kubelet_credential(other) != kubelet_credential(token)
    assert parse_node_token("plain-secret").ca_hash == ""


def test_serving_certificate_carries_the_ca(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki", ["127.0.0.1"])
    assert pki.server_cert.read_bytes().endswith(pki.ca_cert.read_bytes())
    # An older data dir (the leaf alone) gets its certificate re-issued with the CA.
    leaf = pki.server_cert.read_bytes()[: -len(pki.ca_cert.read_bytes())]
    pki.server_cert.write_bytes(leaf)
    again = ensure_pki(tmp_path / "pki", ["127.0.0.1"])
    assert again.server_cert.read_bytes().endswith(pki.ca_cert.read_bytes())


@contextmanager
def tls_server(cert: Path, key: Path) -> Iterator[int]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_agent_takes_the_ca_from_the_handshake_only_if_the_token_names_it(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki", ["127.0.0.1"])
    token = ensure_node_token(tmp_path / "node-token", pki.ca_cert)
    stranger = ensure_pki(tmp_path / "stranger", ["127.0.0.1"])
    with tls_server(pki.server_cert, pki.server_key) as port:
        pem = fetch_ca(f"https://127.0.0.1:{port}", parse_node_token(token).ca_hash)
        assert pem == pki.ca_cert.read_bytes()
        other = parse_node_token(ensure_node_token(tmp_path / "t2", stranger.ca_cert)).ca_hash
        with pytest.raises(StartupError, match="does not show the CA"):
            fetch_ca(f"https://127.0.0.1:{port}", other)


def test_serving_hosts_and_join_hint(tmp_path: Path) -> None:
    from nanokube.cmd.cluster import join_hint, serving_hosts

    assert serving_hosts("10.0.0.5") == ["10.0.0.5"]
    everywhere = serving_hosts("0.0.0.0")  # every local address, loopback included
    assert "127.0.0.1" in everywhere
    hint = join_hint("https://10.0.0.5:6443", tmp_path / "node-token")
    assert hint == f"join a node: nanokube agent --server https://10.0.0.5:6443 --token $(cat {tmp_path}/node-token)"
    assert "--host" in join_hint("https://127.0.0.1:6443", tmp_path / "node-token")
