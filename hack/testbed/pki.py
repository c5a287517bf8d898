"""Certificates and keys of the API server testbed, made with the openssl CLI.

The testbed needs a CA that clients trust, a serving certificate for
127.0.0.1 signed by it, and a key pair that signs ServiceAccount tokens. The
openssl command line tool makes them, because the project's environment does
not ship the ``cryptography`` package. All keys are ECDSA P-256, which
openssl generates in milliseconds.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

VALIDITY_DAYS = 3650
EC_CURVE = "prime256v1"


class PKIError(RuntimeError):
    """Raised when an openssl command fails."""


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise PKIError("openssl not found in PATH; install it (Debian package openssl)")
    result = subprocess.run(
        [openssl, *args], capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise PKIError(
            f"openssl {args[0]} failed with exit code {result.returncode}: {result.stderr.strip()}"
        )


def _subject(common_name: str, organizations: Sequence[str] = ()) -> str:
    # openssl -subj takes "/O=a/O=b/CN=c". A slash inside a value needs a backslash.
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("/", "\\/")

    parts = [f"/O={escape(org)}" for org in organizations]
    parts.append(f"/CN={escape(common_name)}")
    return "".join(parts)


@dataclass(frozen=True)
class KeyPair:
    """Paths of a PEM certificate and its PEM private key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class CertificateAuthority:
    """A self-signed CA whose key signs the testbed's certificates."""

    cert: Path
    key: Path

    @classmethod
    def create(
        cls, directory: Path, common_name: str = "pf-status-relay-testbed-ca"
    ) -> CertificateAuthority:
        """Generate a CA key and self-signed certificate in ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = directory / "ca.crt", directory / "ca.key"
        _openssl(
            "req", "-x509", "-new", "-nodes",
            "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{EC_CURVE}",
            "-keyout", str(key), "-out", str(cert),
            "-days", str(VALIDITY_DAYS),
            "-subj", _subject(common_name),
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        )  # fmt: skip
        return cls(cert=cert, key=key)

    def issue(
        self,
        directory: Path,
        name: str,
        common_name: str,
        organizations: Sequence[str] = (),
        *,
        server: bool = False,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
    ) -> KeyPair:
        """Generate a key and a certificate signed by this CA.

        ``server=True`` makes a TLS server certificate for the given DNS names
        and IP addresses. Otherwise the certificate is for client
        authentication, with the user in CN and the groups in O.
        """
        directory.mkdir(parents=True, exist_ok=True)
        key, csr, cert = (directory / f"{name}{ext}" for ext in (".key", ".csr", ".crt"))
        extensions = directory / f"{name}.ext"

        lines = [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            f"extendedKeyUsage={'serverAuth' if server else 'clientAuth'}",
        ]
        alt_names = [f"DNS:{dns}" for dns in dns_names] + [f"IP:{ip}" for ip in ip_addresses]
        if alt_names:
            lines.append(f"subjectAltName={','.join(alt_names)}")
        extensions.write_text("\n".join(lines) + "\n", encoding="utf-8")

        _openssl(
            "req", "-new", "-nodes",
            "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{EC_CURVE}",
            "-keyout", str(key), "-out", str(csr),
            "-subj", _subject(common_name, organizations),
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(csr),
            "-CA", str(self.cert), "-CAkey", str(self.key),
            "-set_serial", f"0x{secrets.token_hex(16)}",
            "-days", str(VALIDITY_DAYS),
            "-extfile", str(extensions),
            "-out", str(cert),
        )  # fmt: skip
        csr.unlink()
        extensions.unlink()
        return KeyPair(cert=cert, key=key)


def generate_signing_key(private_key: Path, public_key: Path) -> None:
    """Generate an ECDSA key pair, as used to sign and verify ServiceAccount tokens.

    kube-apiserver reads only public keys from --service-account-key-file, so
    the public half gets a file of its own.
    """
    private_key.parent.mkdir(parents=True, exist_ok=True)
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{EC_CURVE}",
        "-out", str(private_key),
    )  # fmt: skip
    _openssl("pkey", "-in", str(private_key), "-pubout", "-out", str(public_key))
