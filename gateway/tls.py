"""A site certificate for the console and API on the site network (HTTPS), made on the gateway itself.

A duty room has no public name and often no internet, so no public CA can issue for it.
``estate-gateway tls new`` makes a small site CA (kept offline-able: only its certificate
is needed afterwards) and a server certificate it signs for the gateway's host names and
addresses. A technician's phone trusts the site once by installing ``site-ca.pem``
(docs/security.md says how on Android and iOS); the server certificate can then be renewed
without touching the phones. ECDSA P-256 keys, SHA-256, server certificate valid 825 days
(the longest iOS accepts), CA 10 years.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_DAYS = 825
CA_DAYS = 3650


@dataclass(frozen=True)
class SiteCertificate:
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path


def default_names() -> tuple[list[str], list[str]]:
    """This machine's host names and its non-loopback addresses (what a phone on the site network will type)."""
    names = {"localhost", socket.gethostname()}
    fqdn = socket.getfqdn()
    if fqdn and "." in fqdn:
        names.add(fqdn)
    addrs = {"127.0.0.1"}
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            addrs.add(str(info[4][0]))
    except OSError:
        pass
    return sorted(names), sorted(a for a in addrs if not a.startswith("fe80"))


def make_site_certificate(out: Path, site: str, names: list[str], addresses: list[str]) -> SiteCertificate:
    """Write site-ca.pem/.key and server.pem/.key into ``out`` (keys 0600); reuse an existing site CA."""
    out.mkdir(parents=True, exist_ok=True)
    paths = SiteCertificate(out / "site-ca.pem", out / "site-ca.key", out / "server.pem", out / "server.key")
    if paths.ca_cert.is_file() and paths.ca_key.is_file():
        ca, ca_key = _load(paths.ca_cert, paths.ca_key)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _ca_certificate(site, ca_key)
        _write(paths.ca_cert, paths.ca_key, ca, ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    _write(paths.cert, paths.key, _server_certificate(site, names, addresses, key, ca, ca_key), key)
    return paths


def _name(site: str, cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"estate-gateway {site}"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca_certificate(site: str, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(_name(site, f"{site} site CA"))
            .issuer_name(_name(site, f"{site} site CA")).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))


def _server_certificate(site: str, names: list[str], addresses: list[str], key: ec.EllipticCurvePrivateKey,
                        ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    return (x509.CertificateBuilder().subject_name(_name(site, names[0] if names else "estate-gateway"))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))


def _write(cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    key_path.touch(mode=0o600, exist_ok=True)
    key_path.chmod(0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _load(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path} is not the EC key this tool made; move the old site CA away to make a new one")
    return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
