"""Certificates, decided on the controller: the engine's public one and the internal CA.

**The engine** (Caddy on Ampere). Production (``engine_tls_domain`` set, e.g. from
``GEPT_ENGINE_DOMAIN``): Caddy obtains and renews a public certificate for that name itself
(ACME, TLS-ALPN on port 443); nothing is uploaded. The lab (``engine_tls_lab_ca`` true): a
local CA and a server certificate for the names the lab reaches Ampere by (``localhost``,
``127.0.0.1``, ``ampere``) are made once in the lab's secrets directory and uploaded; the
tests trust ``engine-tls-ca.crt`` from there.

**The internal CA** (``internal-ca.crt``/``.key`` in ``secrets_dir``): signs one certificate
per host (``tls-<host>.crt``/``.key``, for server *and* client authentication, common name =
the host's inventory name) for what hosts say to each other: pgBackRest's TLS server (the
repository host accepts archive pushes from the database hosts, the database hosts accept
backups from the repository host, ``tls-server-auth`` matching the common name) and
PostgreSQL's own TLS. Inventories with ``generate_secrets`` (the lab) make it on first use;
production keeps the CA in the operator's secrets directory, made once with
``python -m deploys.tls <secrets_dir>`` (which also makes each host's certificate).

Example:
    >>> cert, key = lab_certificate(Path("/tmp/s"), ["ampere"])     # doctest: +SKIP
    >>> pair = host_certificate(Path("/tmp/s"), "hydra", ["hydra"]) # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CA_CERT = "engine-tls-ca.crt"
CA_KEY = "engine-tls-ca.key"
SERVER_CERT = "engine-tls.crt"
SERVER_KEY = "engine-tls.key"
INTERNAL_CA_CERT = "internal-ca.crt"
INTERNAL_CA_KEY = "internal-ca.key"


@dataclass(frozen=True)
class HostCertificate:
    """A host's certificate (PEM), its key (PEM) and the CA certificate that signed it."""

    cert: bytes
    key: bytes
    ca: bytes


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _ca(folder: Path, cert_name: str, key_name: str, common_name: str,
        create: bool) -> tuple[Any, Any]:
    """The CA ``(certificate, key)`` kept in ``folder``, made there when ``create``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    cert_path, key_path = folder / cert_name, folder / key_name
    if cert_path.exists() and key_path.exists():
        return (x509.load_pem_x509_certificate(cert_path.read_bytes()),
                serialization.load_pem_private_key(key_path.read_bytes(), password=None))
    if not create:
        raise RuntimeError(f"the CA {cert_path} is missing: make it once with "
                           f"`python -m deploys.tls {folder}` (it stays in that folder, 0600)")
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    _write(key_path, ca_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()), 0o600)
    _write(cert_path, ca.public_bytes(pem), 0o644)
    return ca, ca_key


def _issue(ca: Any, ca_key: Any, common_name: str, names: list[str], *,
           client: bool) -> tuple[bytes, bytes]:
    """A leaf certificate for ``names`` (DNS names or IP addresses): ``(cert PEM, key PEM)``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH]
                                                  if client else [])
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (cert.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def lab_certificate(folder: Path, names: list[str]) -> tuple[bytes, bytes]:
    """``(certificate chain PEM, key PEM)`` for the lab's engine, made once per folder."""
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = folder / SERVER_CERT, folder / SERVER_KEY
    if cert_path.exists() and key_path.exists() and (folder / CA_CERT).exists():
        return cert_path.read_bytes(), key_path.read_bytes()
    ca, ca_key = _ca(folder, CA_CERT, CA_KEY, "GePT lab CA", create=True)
    cert, key = _issue(ca, ca_key, names[0], ["localhost", *names, "127.0.0.1"], client=False)
    chain = cert + ca.public_bytes(serialization.Encoding.PEM)
    _write(cert_path, chain, 0o644)
    _write(key_path, key, 0o600)
    return chain, key


def _names_of(pem: bytes) -> list[str]:
    """The DNS names and addresses a certificate is valid for."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pem)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*sans.get_values_for_type(x509.DNSName),
            *(str(a) for a in sans.get_values_for_type(x509.IPAddress))]


def host_certificate(folder: Path, host: str, names: list[str], *,
                     create: bool = True) -> HostCertificate:
    """Host ``host``'s certificate from the internal CA in ``folder``, made once.

    ``names`` are the names and addresses other hosts reach it by; the common name is
    ``host`` (what pgBackRest's ``tls-server-auth`` matches).

    Raises:
        RuntimeError: when the CA is missing and ``create`` is False (production).
    """
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = folder / f"tls-{host}.crt", folder / f"tls-{host}.key"
    ca_pem_path = folder / INTERNAL_CA_CERT
    wanted = [host, *names]
    known: list[str] = []
    if cert_path.exists() and key_path.exists() and ca_pem_path.exists():
        known = _names_of(cert_path.read_bytes())
        if set(wanted) <= set(known):
            return HostCertificate(cert_path.read_bytes(), key_path.read_bytes(),
                                   ca_pem_path.read_bytes())
    # Several deploys ask for one host's certificate (pgBackRest, PostgreSQL): a new one
    # covers every name asked for so far, so that it settles after one converge.
    ca, ca_key = _ca(folder, INTERNAL_CA_CERT, INTERNAL_CA_KEY, "GePT internal CA",
                     create=create)
    cert, key = _issue(ca, ca_key, host, [*wanted, *known], client=True)
    _write(cert_path, cert, 0o644)
    _write(key_path, key, 0o600)
    return HostCertificate(cert, key, ca.public_bytes(serialization.Encoding.PEM))


def host_certificate_for(data: Any, host_name: str, names: list[str]) -> HostCertificate:
    """:func:`host_certificate` from inventory data (``secrets_dir``, ``generate_secrets``)."""
    folder = Path(data.get("secrets_dir") or "~/.config/gept/secrets").expanduser()
    return host_certificate(folder, host_name, names, create=bool(data.get("generate_secrets")))


if __name__ == "__main__":  # python -m deploys.tls <secrets_dir> [host ...]
    target = Path(sys.argv[1]).expanduser()
    _ca(target, INTERNAL_CA_CERT, INTERNAL_CA_KEY, "GePT internal CA", create=True)
    for name in sys.argv[2:]:
        host_certificate(target, name, [name])
    print(f"internal CA and host certificates in {target}")
