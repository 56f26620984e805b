"""``nanokube agent --server URL --token T``: this machine as a worker of a control plane elsewhere.

The node is the one ``nanokube up`` runs (``kubelet.local.LocalNode``: runc containers, the CNI pod network,
the kubelet server, routes to the other nodes' Pods), talking to the API server over HTTPS with the HTTP
client instead of in-process. The differences are settings: the pod CIDR comes from the control plane's node
IPAM, the kubelet server listens on the node's address (port 10250, as the kubelet's) and is announced in the
Node, and the node is not labelled control-plane.

Credentials, as k3s does it: ``--token`` is the server's ``<data-dir>/node-token``
(``K10<sha256 of the CA>::node:<secret>``). The agent presents it as its bearer token, and its kubelet server
accepts the API server's calls with the credential derived from it (``util.certs.kubelet_credential``).
Trusting the CA: with ``--ca-file`` that file; otherwise the agent opens one TLS handshake without checking
it, takes the certificate chain the server shows (the server sends its CA along with its certificate) and
keeps the certificate whose hash the token names. Nothing is sent before that check, so a server that is not
the cluster's never sees the token; the CA is saved as ``<data-dir>/ca.crt`` and every request afterwards is
verified against it. (Fetching the CA over an authenticated request would send the token to whoever answers.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from nanokube.api.errors import ApiError, Forbidden, Unauthorized
from nanokube.client.http import HttpClient
from nanokube.client.interface import Client
from nanokube.dns.server import DNSServer, DNSSettings
from nanokube.kubelet.local import Companion, LocalNode, LocalNodeSettings, NodeFacts, native_available
from nanokube.proxy.nftables import NftablesBackend, nft_available
from nanokube.proxy.proxier import Proxier, ProxySettings
from nanokube.util.certs import ca_hash, kubelet_credential, parse_node_token

from .cluster import StartupError, check_data_dir, lock_data_dir
from .settings import default_data_dir

log = logging.getLogger(__name__)
_DER = 2  # _ssl.ENCODING_DER: the private chain API takes the encoding


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nanokube agent",
                                description="Run this machine as a worker node of a nanokube control plane.")
    p.add_argument("--server", required=True, help="the API server, e.g. https://10.0.0.1:6443")
    p.add_argument("--token", default=os.environ.get("NANOKUBE_TOKEN", ""),
                   help="the server's node token (the contents of <server data-dir>/node-token)")
    p.add_argument("--token-file", type=Path, default=None, help="read the node token from this file")
    p.add_argument("--ca-file", type=Path, default=None,
                   help="trust this CA for the server (default: the CA the server shows, if the token's hash "
                        "matches it)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"the node's state, images and Pods (default {default_data_dir() / 'agent'})")
    p.add_argument("--node-name", default="", help="the Node's name (default: the host name)")
    p.add_argument("--address", default="",
                   help="the node's InternalIP, where the kubelet listens and other nodes route Pod traffic "
                        "(default: the address this machine reaches the server from)")
    p.add_argument("--kubelet-port", type=int, default=10250, help="the kubelet server's port (default 10250)")
    p.add_argument("--bridge", default="nk0", help="the Linux bridge the Pods attach to (default nk0)")
    p.add_argument("--netns-prefix", default="nka-",
                   help="Pods' network namespaces are /run/netns/<prefix><pod uid> (default nka-; the node of "
                        "nanokube up uses nk-)")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16",
                   help="the cluster's pod range, routed between nodes (default 10.42.0.0/16)")
    p.add_argument("--proxy-table", default=os.environ.get("NANOKUBE_PROXY_TABLE", "nanokube"),
                   help="the nftables table the Service proxy programs (default nanokube); --proxy-table '' runs "
                        "no proxy")
    p.add_argument("--cluster-dns", default="10.43.0.10", metavar="IP",
                   help="the kube-dns Service address Pods use as their nameserver (default 10.43.0.10); this "
                        "node serves cluster DNS on its pod bridge gateway behind it; '' runs no DNS server")
    p.add_argument("--log-level", default=os.environ.get("NANOKUBE_LOG_LEVEL", "info"),
                   choices=("debug", "info", "warning", "error"))
    return p


def _server_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise StartupError(f"--server wants https://HOST:PORT, got {url!r}")
    return parts.hostname, parts.port or 443


def source_address(url: str) -> str:
    """The local address this machine reaches the server from (a UDP connect: nothing is sent)."""
    host, port = _server_address(url)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        return str(sock.getsockname()[0])


def _chain_der(tls: ssl.SSLSocket) -> list[bytes]:
    """The certificates the server sent, unverified (public from Python 3.13, private before)."""
    public = getattr(tls, "get_unverified_chain", None)
    if public is not None:
        return [bytes(c) for c in public()]
    sslobj: Any = getattr(tls, "_sslobj", None)
    chain = sslobj.get_unverified_chain() if sslobj is not None else None
    return [c.public_bytes(_DER) for c in chain or []]


def fetch_ca(url: str, wanted_hash: str, *, timeout: float = 10.0) -> bytes:
    """The PEM of the certificate in the server's TLS chain whose sha256 is ``wanted_hash``."""
    host, port = _server_address(url)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # checked below against the token's hash, before anything is sent
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            chain = _chain_der(tls)
    except OSError as err:
        raise StartupError(f"cannot reach the server at {url}: {err}") from err
    for der in chain:
        if hashlib.sha256(der).hexdigest() == wanted_hash:
            cert = x509.load_der_x509_certificate(der)
            return cert.public_bytes(serialization.Encoding.PEM)
    raise StartupError(f"the server at {url} does not show the CA the token names: is this the right server "
                       "and token? (or pass --ca-file)")


def trust(args: argparse.Namespace, token: str, data_dir: Path) -> Path:
    """The CA file the agent verifies the server with (see the module docstring)."""
    wanted = parse_node_token(token).ca_hash
    if args.ca_file is not None:
        pem = args.ca_file.read_bytes()
        if wanted and ca_hash(pem) != wanted:
            raise StartupError(f"{args.ca_file} is not the CA the token names")
        return Path(args.ca_file)
    if not wanted:
        raise StartupError("the token carries no CA hash (not a K10... node token): pass --ca-file with the "
                           "server's <data-dir>/pki/ca.crt")
    path = data_dir / "ca.crt"
    if path.exists() and ca_hash(path.read_bytes()) == wanted:
        return path  # fetched at an earlier start: a restart needs no handshake
    path.write_bytes(fetch_ca(args.server, wanted))
    return path


def read_token(args: argparse.Namespace) -> str:
    token = args.token_file.read_text().strip() if args.token_file is not None else args.token.strip()
    if not token:
        raise StartupError("no token: pass --token $(cat <server data-dir>/node-token) or --token-file")
    return str(token)


async def wait_for_server(client: HttpClient, url: str, stop: asyncio.Event, *, retry: float = 2.0) -> bool:
    """Until the API server answers (False if ``stop`` comes first); a refused token is fatal."""
    namespaces = client.registry.get("", "v1", "namespaces")
    assert namespaces is not None
    said = ""
    while not stop.is_set():
        try:
            await client.get(namespaces, "", "default")
            return True
        except (Unauthorized, Forbidden) as err:
            raise StartupError(f"the server at {url} refused the token: {err.message}") from err
        except (ApiError, aiohttp.ClientError, OSError) as err:
            if str(err) != said:
                said = str(err)
                print(f"nanokube: agent: waiting for the server at {url}: {err}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), retry)
    return False


def service_proxy(table: str) -> Companion:
    """The node's Service proxy (nftables), started once the node knows its name, address and pod CIDR."""
    async def run(client: Client, facts: NodeFacts, stop: asyncio.Event) -> None:
        ok, why = nft_available()
        if not ok:
            log.warning("no service proxy: %s", why)
            return
        settings = ProxySettings(node_name=facts.name, node_ips=facts.addresses, cluster_cidr=facts.cluster_cidr)
        await Proxier(client, NftablesBackend(table), settings).run(stop=stop)

    return run


def cluster_dns(cluster_ip: str) -> Companion:
    """A cluster DNS server for the node's Pods on its pod bridge gateway; its address joins the kube-dns
    Service's endpoints (one per node), so the proxy spreads lookups over every node's server."""
    async def run(client: Client, facts: NodeFacts, stop: asyncio.Event) -> None:
        gateway = str(ipaddress.ip_network(facts.pod_cidr, strict=False).network_address + 1)
        settings = DNSSettings(listen=gateway, cluster_ip=cluster_ip, node_name=facts.name)
        try:
            await DNSServer(client, settings).run(stop=stop)
        except Exception:
            log.exception("cluster DNS on %s stopped", gateway)
            raise

    return run


async def run_agent(args: argparse.Namespace, stop: asyncio.Event) -> None:
    ok, why = native_available()
    if not ok:
        raise StartupError(f"this machine cannot run a native node: {why}")
    data_dir: Path = args.data_dir or default_data_dir() / "agent"
    check_data_dir(data_dir)
    lock = lock_data_dir(data_dir)
    try:
        token = read_token(args)
        ca_file = await asyncio.to_thread(trust, args, token, data_dir)
        address = args.address or await asyncio.to_thread(source_address, args.server)
        client = HttpClient(args.server, token=token, ca_file=str(ca_file))
        settings = LocalNodeSettings(data_dir=data_dir, name=args.node_name, pod_cidr="", bridge=args.bridge,
                                     kubelet_token=kubelet_credential(token), address=address,
                                     kubelet_host=address, kubelet_port=args.kubelet_port, control_plane=False,
                                     cluster_cidr=args.cluster_cidr, netns_prefix=args.netns_prefix,
                                     cluster_dns=(args.cluster_dns,) if args.cluster_dns else ())
        companions = [service_proxy(args.proxy_table)] if args.proxy_table else []
        if args.cluster_dns:
            companions.append(cluster_dns(args.cluster_dns))
        node = LocalNode(client, settings, companions=companions)
        print(f"nanokube: agent: node {node.name} at {address} joining {args.server} (data directory "
              f"{data_dir})", flush=True)
        try:
            if await wait_for_server(client, args.server, stop):
                await node.run(stop=stop)
        finally:
            await client.close()
    finally:
        os.close(lock)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_agent(args, stop)

    try:
        asyncio.run(run())
    except StartupError as err:
        print(f"nanokube: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print("nanokube: agent stopped (its containers keep running)", flush=True)
    return 0
