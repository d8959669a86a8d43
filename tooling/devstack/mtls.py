"""The local mesh's dev CA and its workloads' certificates (mesh.policy.LocalMtls).

The CA is made once per state folder and kept, as a cluster's mesh CA is; each start
issues every workload a fresh certificate for a week, as the workload tokens
(tooling/devstack/auth.py): a stack left up longer must restart. Keys are EC P-256,
written 0600.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from caixa.cli.dev_tokens import write_private
from mesh.policy import LocalMtls
from mesh.render.mtls import dns_name, spiffe_id

FOLDER = "mtls"
CA_NAME = "Caixa local mesh CA"
CA_DAYS = 365
LEAF_DAYS = 7.0


def mtls_sets(state_dir: Path) -> list[str]:
    """`--set` lines that turn on the local mesh's mTLS with this stack's CA."""
    return [f"mesh.localTopology.mtls.certsDir={state_dir / FOLDER}"]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate_authority(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The CA of `folder` (ca.key, ca.pem), made if missing or expired."""
    key_file, cert_file = folder / "ca.key", folder / "ca.pem"
    if key_file.exists() and cert_file.exists():
        key = serialization.load_pem_private_key(key_file.read_bytes(), None)
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        # Kept while it outlives a new workload certificate; else a new CA.
        lasts = cert.not_valid_after_utc > _now() + datetime.timedelta(days=LEAF_DAYS + 1)
        if isinstance(key, ec.EllipticCurvePrivateKey) and lasts:
            return key, cert
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    write_private(key_file, _pem_key(key))
    write_private(cert_file, cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def issue(
    mtls: LocalMtls,
    workload: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    *,
    spiffe: str | None = None,
) -> tuple[bytes, bytes]:
    """A workload's (certificate, key) PEM, both client and server, naming it by its
    SPIFFE id (or `spiffe`, for a test's impostor) and a DNS name."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, workload)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=LEAF_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.UniformResourceIdentifier(spiffe or spiffe_id(mtls, workload)),
                    x509.DNSName(dns_name(mtls, workload)),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def prepare(mtls: LocalMtls, workloads: Iterable[str]) -> Path:
    """The CA (kept, or made) and a fresh certificate per workload in `certs_dir`."""
    folder = Path(mtls.certs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = certificate_authority(folder)
    for workload in workloads:
        cert, key = issue(mtls, workload, ca_key, ca_cert)
        # Each file replaced whole; the certificate last, so a reader that finds the
        # new one finds its key too.
        write_private(folder / f"{workload}.key", key)
        write_private(folder / f"{workload}.pem", cert)
    return folder
