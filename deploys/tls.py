"""The engine's TLS certificate, decided on the controller.

Production (``engine_tls_domain`` set, e.g. from ``GEPT_ENGINE_DOMAIN``): Caddy obtains and
renews a public certificate for that name itself (ACME, TLS-ALPN on port 443); nothing is
uploaded. The lab (``engine_tls_lab_ca`` true): a local CA and a server certificate for the
names the lab reaches Ampere by (``localhost``, ``127.0.0.1``, ``ampere``) are made once in
the lab's secrets directory and uploaded; the tests trust ``engine-tls-ca.crt`` from there.

Example:
    >>> cert, key = lab_certificate(Path("/tmp/s"), ["ampere"])     # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

CA_CERT = "engine-tls-ca.crt"
CA_KEY = "engine-tls-ca.key"
SERVER_CERT = "engine-tls.crt"
SERVER_KEY = "engine-tls.key"


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def lab_certificate(folder: Path, names: list[str]) -> tuple[bytes, bytes]:
    """``(certificate chain PEM, key PEM)`` for the lab's engine, made once per folder."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = folder / SERVER_CERT, folder / SERVER_KEY
    if cert_path.exists() and key_path.exists() and (folder / CA_CERT).exists():
        return cert_path.read_bytes(), key_path.read_bytes()
    now = dt.datetime.now(dt.UTC)
    pem = serialization.Encoding.PEM
    plain = serialization.NoEncryption()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "GePT lab CA")])
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
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in ["localhost", *names]]
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write(folder / CA_KEY, ca_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                 plain), 0o600)
    _write(folder / CA_CERT, ca.public_bytes(pem), 0o644)
    chain = cert.public_bytes(pem) + ca.public_bytes(pem)
    _write(cert_path, chain, 0o644)
    _write(key_path, key.private_bytes(pem, serialization.PrivateFormat.PKCS8, plain), 0o600)
    return chain, key_path.read_bytes()
