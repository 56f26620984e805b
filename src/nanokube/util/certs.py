"""The cluster's PKI at its simplest: one CA, one serving certificate, one admin bearer token, one node token.

Made at first start under ``<data-dir>/pki`` and reused afterwards, so a kubeconfig written once keeps working
across restarts. The serving certificate names every address the server may be reached at, and the server
presents it together with the CA, so a joining agent can pick the CA out of the handshake.

The node token (``<data-dir>/node-token``, k3s' format ``K10<sha256 of the CA>::node:<secret>``) is what
``nanokube agent --token`` takes: the hash lets the agent trust the CA it is shown only if it is the cluster's,
the whole token is the agent's bearer credential, and ``kubelet_credential`` derives from it the token the API
server presents to kubelets, so the kubelet link (plain HTTP) never carries the API credential itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    token_file: Path

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ensure_pki(directory: Path, hosts: list[str]) -> Pki:
    """Create (once) a CA, a serving certificate for ``hosts`` and an admin token; return their paths.

    A serving certificate that does not cover every host asked for now is re-issued from the same CA."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    pki = Pki(directory / "ca.crt", directory / "server.crt", directory / "server.key", directory / "admin.token")
    ca_key_path = directory / "ca.key"
    now = dt.datetime.now(dt.UTC)
    if not pki.ca_cert.exists() or not ca_key_path.exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nanokube-ca")])
        ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
              .not_valid_after(now + dt.timedelta(days=3650))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False, encipher_only=False,
                                           decipher_only=False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        _write_private(ca_key_path, _key_pem(ca_key))
        pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        pki.server_cert.unlink(missing_ok=True)
    wanted = set(hosts) | {"127.0.0.1", "localhost", socket.gethostname()}
    if not pki.server_cert.exists() or not _covers(pki.server_cert, wanted) or not _has_ca(pki):
        _issue_server_cert(pki, ca_key_path, sorted(wanted), now)
    if not pki.token_file.exists():
        _write_private(pki.token_file, secrets.token_urlsafe(32).encode() + b"\n")
    return pki


def _covers(cert_path: Path, hosts: set[str]) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    names = {str(n) for n in san.get_values_for_type(x509.DNSName)}
    names |= {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    expires = cert.not_valid_after_utc
    return hosts <= names and expires > dt.datetime.now(dt.UTC) + dt.timedelta(days=30)


def _has_ca(pki: Pki) -> bool:
    """The serving certificate file also carries the CA (older data dirs have the leaf alone)."""
    return pki.server_cert.read_bytes().count(b"BEGIN CERTIFICATE") > 1


def _issue_server_cert(pki: Pki, ca_key_path: Path, hosts: list[str], now: dt.datetime) -> None:
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nanokube-apiserver")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_private(pki.server_key, _key_pem(key))
    pki.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + pki.ca_cert.read_bytes())


def ensure_service_account_key(directory: Path) -> Path:
    """The RSA key (``<directory>/sa.key``, PKCS#8 PEM) the API server signs ServiceAccount tokens with: made
    once and kept, so tokens issued before a restart still verify after it."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "sa.key"
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return path


NODE_TOKEN_PREFIX = "K10"


@dataclass(frozen=True)
class NodeToken:
    """A parsed node token: the CA's hash (empty for a bare secret) and the secret."""

    ca_hash: str
    secret: str


def ca_hash(ca_pem: bytes) -> str:
    """sha256 (hex) of the CA certificate's DER form, as k3s' tokens carry it."""
    der = x509.load_pem_x509_certificate(ca_pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def parse_node_token(text: str) -> NodeToken:
    """``K10<hash>::node:<secret>`` (or ``K10<hash>::<secret>``) or a bare secret."""
    text = text.strip()
    if text.startswith(NODE_TOKEN_PREFIX) and "::" in text:
        digest, _, rest = text[len(NODE_TOKEN_PREFIX):].partition("::")
        _, _, secret = rest.rpartition(":")
        return NodeToken(digest.lower(), secret)
    return NodeToken("", text)


def ensure_node_token(path: Path, ca_cert: Path) -> str:
    """The cluster's node token at ``path``: made once, its secret kept across restarts (its CA hash follows
    the CA if that was re-made)."""
    secret = parse_node_token(path.read_text()).secret if path.exists() else ""
    token = f"{NODE_TOKEN_PREFIX}{ca_hash(ca_cert.read_bytes())}::node:{secret or secrets.token_hex(24)}"
    if not path.exists() or path.read_text().strip() != token:
        _write_private(path, token.encode() + b"\n")
    return token


def kubelet_credential(node_token: str) -> str:
    """The bearer token the API server presents to kubelets, derived from the node token's secret (both sides
    know it; a reader of the kubelet link learns nothing that opens the API)."""
    secret = parse_node_token(node_token).secret
    return hmac.new(secret.encode(), b"nanokube kubelet", hashlib.sha256).hexdigest()


def write_kubeconfig(path: Path, server_url: str, ca_cert: Path, token: str, cluster: str = "nanokube") -> None:
    """A kubeconfig for the admin user, with the CA inlined so the file works from anywhere."""
    import base64

    import yaml

    ca_data = base64.b64encode(ca_cert.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server_url, "certificate-authority-data": ca_data}}],
        "users": [{"name": f"{cluster}-admin", "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": f"{cluster}-admin",
                                                    "namespace": "default"}}],
        "current-context": cluster,
        "preferences": {},
    }
    _write_private(path, yaml.safe_dump(config, sort_keys=False).encode())
