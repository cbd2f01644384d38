"""A throwaway certificate authority for the sandbox's load balancer: it stands in for ACM.

An HTTPS listener in AWS serves the certificate its `SSLCertificateArns` names. Here the sandbox makes its own CA
when it starts, issues a certificate for the environment's CNAME from it, and exposes the CA file so that a client
(httpx, curl, Chromium's NSS database) can trust exactly that CA and nothing else it did not already trust.
Keys never leave the sandbox's work directory (mode 0600).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=7)  # a sandbox lives for hours; a week covers a long rehearsal
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # Debian's ca-certificates
HOSTNAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


@dataclass(frozen=True)
class IssuedCertificate:
    """One PEM file with the key, the certificate and the CA after it: the form haproxy's `crt` takes."""

    bundle: Path
    names: tuple[str, ...]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        if not HOSTNAME.fullmatch(name):
            raise ValueError(f"{name!r} is neither a host name nor an address") from None
        return x509.DNSName(name)


class SandboxCA:
    """A CA made once per sandbox in `directory`; `ca_file` is what clients trust."""

    def __init__(self, directory: Path, common_name: str = "Sifu sandbox CA"):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self._cert = (
            x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = directory / "sandbox-ca.pem"
        self.ca_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, *names: str) -> IssuedCertificate:
        """A server certificate for `names` (DNS names or addresses; the first is the subject)."""
        if not names:
            raise ValueError("a certificate needs at least one name")
        alt_names = [_alt_name(n) for n in names]  # checks each name before it becomes a file name
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(self._cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        bundle = self.directory / f"{names[0]}.pem"
        bundle.touch(mode=0o600)
        bundle.write_bytes(_pem_key(key) + cert.public_bytes(serialization.Encoding.PEM)
                           + self._cert.public_bytes(serialization.Encoding.PEM))
        return IssuedCertificate(bundle, tuple(names))

    def trust_bundle(self, system_bundle: Path = SYSTEM_BUNDLE) -> Path:
        """The machine's CAs plus this one, for clients that take one file (SSL_CERT_FILE for httpx and Python,
        REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE): they then trust the load balancer and everything they trusted."""
        bundle = self.directory / "trusted.pem"
        system = system_bundle.read_bytes() if system_bundle.exists() else b""
        bundle.write_bytes(system + b"\n" + self.ca_file.read_bytes())
        return bundle
