"""A throw-away certificate authority, so the real SDK clients can talk TLS to the simulator.

The SDKs refuse plain http for tokens and Key Vault, and they verify certificates against the
trust store. Signing the server certificate with a local CA (instead of self-signing it) means one
file, ``ca.pem``, can be trusted once per process while simulators on new ports come and go.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_SERVER_NAMES = ("localhost", "127.0.0.1", "::1")

_CA_CERT = "ca.pem"
_CA_KEY = "ca-key.pem"


@dataclass(frozen=True)
class ServerCertificate:
    certificate: Path
    private_key: Path


class CertificateAuthority:
    """A CA whose certificate lives in ``directory/ca.pem`` (the file clients must trust)."""

    def __init__(
        self, directory: Path, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
    ):
        self.directory = directory
        self._certificate = certificate
        self._key = key
        self._issued = 0

    @classmethod
    def create(cls, directory: str | os.PathLike[str]) -> CertificateAuthority:
        """Make a new CA in ``directory`` (created if missing), replacing any CA already there."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, "Entra Employee Sync simulator CA")]
        )
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        _write_private(folder / _CA_KEY, _key_pem(key))
        (folder / _CA_CERT).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return cls(folder, certificate, key)

    @classmethod
    def load_or_create(cls, directory: str | os.PathLike[str]) -> CertificateAuthority:
        """Reuse the CA in ``directory`` if it is there and valid, so a client that already trusts
        ``ca.pem`` keeps trusting a restarted simulator."""
        folder = Path(directory)
        try:
            certificate = x509.load_pem_x509_certificate((folder / _CA_CERT).read_bytes())
            key = serialization.load_pem_private_key((folder / _CA_KEY).read_bytes(), None)
        except (OSError, ValueError):
            return cls.create(folder)
        if (
            not isinstance(key, ec.EllipticCurvePrivateKey)
            or certificate.not_valid_after_utc < _now()
        ):
            return cls.create(folder)
        return cls(folder, certificate, key)

    @property
    def ca_path(self) -> Path:
        return self.directory / _CA_CERT

    def issue_server_certificate(
        self, names: tuple[str, ...] = DEFAULT_SERVER_NAMES
    ) -> ServerCertificate:
        """Sign a certificate for ``names`` (DNS names or IPs) and write it beside the CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self._certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(
                x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    content_commitment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        # Several simulators may share one CA directory (one per test), so each gets its own files.
        self._issued += 1
        stem = f"server-{os.getpid()}-{id(self):x}-{self._issued}"
        cert_path = self.directory / f"{stem}.pem"
        key_path = self.directory / f"{stem}-key.pem"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        _write_private(key_path, _key_pem(key))
        return ServerCertificate(cert_path, key_path)

    def server_ssl_context(self, names: tuple[str, ...] = DEFAULT_SERVER_NAMES) -> ssl.SSLContext:
        issued = self.issue_server_certificate(names)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(issued.certificate, issued.private_key)
        # Loaded into memory: the files would only pile up in a reused state directory.
        issued.certificate.unlink()
        issued.private_key.unlink()
        return context


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class ClientCertificate:
    """A certificate an app authenticates with (not the TLS CA): RSA, since Entra's client
    assertions are RS256/PS256 ("Microsoft identity platform application authentication
    certificate credentials"). ``certificate_pem`` goes on the app registration (world file
    ``keyCredentials``); ``pem`` (key + certificate) is what azure-identity's CertificateCredential
    and a Key Vault secret of content type ``application/x-pem-file`` hold."""

    certificate_pem: str
    private_key_pem: str = field(repr=False)
    not_after: dt.datetime

    @property
    def pem(self) -> str:
        return self.private_key_pem + self.certificate_pem


def make_client_certificate(
    common_name: str = "Entra Employee Sync",
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> ClientCertificate:
    """A self-signed RSA-2048 certificate, as ``New-SelfSignedCertificate`` or Key Vault's
    self-issued policy makes; validity defaults to [now - 1 day, now + 365 days]."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = _now()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    end = not_after or now + dt.timedelta(days=365)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or min(now, end) - dt.timedelta(days=1))
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    return ClientCertificate(
        certificate.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        certificate.not_valid_after_utc,
    )
