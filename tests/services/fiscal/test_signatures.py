"""NF-e signatures, made the NF-e way in the test (enveloped, C14N 1.0, RSA-SHA1, under a
certificate that names the issuer's CNPJ) and checked: integrity-only under a
self-signed certificate, invalid after one changed byte, valid under a trusted test CA,
a CNPJ mismatch flagged; nfelib's samples (edited after signing) do not verify."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from services.fiscal.signatures import DS, SignatureStatus, verify
from services.fiscal.xml_input import parse
from tests.services.fiscal.samples import sample_paths
from tooling.fiscal_documents import (
    ISSUED,
    ISSUER,
    NFE,
    SAMPLE,
    Signer,
    certificate,
    invoice,
    new_key,
    pem,
)


def _signed(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> etree._Element:
    """The sample's NFe, its old signature dropped, signed again the NF-e way."""
    return parse(invoice(Signer(key, cert), wrapped=False))


@pytest.fixture(scope="module")
def issuer_key() -> rsa.RSAPrivateKey:
    return new_key()


def test_self_signed_is_integrity_only_and_one_byte_breaks_it(
    issuer_key: rsa.RSAPrivateKey,
) -> None:
    cert = certificate(f"EMPRESA TESTE LTDA:{ISSUER}", issuer_key)
    signed = _signed(cert, issuer_key)
    report = verify(signed, issuer_cnpj=ISSUER, at=ISSUED)
    assert report.status is SignatureStatus.INTEGRITY_ONLY, report.message
    assert report.certificate_cnpj == ISSUER and report.issuer_matches is True
    # One changed byte of the signed content.
    name = signed.find(f".//{NFE}dest/{NFE}xNome")
    assert name is not None and name.text
    name.text = name.text[:-1] + ("X" if name.text[-1] != "X" else "Y")
    assert verify(signed, issuer_cnpj=ISSUER, at=ISSUED).status is SignatureStatus.INVALID


def test_a_trusted_ca_makes_it_valid(issuer_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    ca_key = new_key()
    ca = certificate("AC TESTE ICP-BRASIL", ca_key, ca=True)
    leaf = certificate(f"EMPRESA TESTE LTDA:{ISSUER}", issuer_key, (ca.subject, ca_key))
    signed = _signed(leaf, issuer_key)
    bundle = tmp_path / "icp-brasil.pem"
    bundle.write_bytes(pem(ca))
    report = verify(signed, issuer_cnpj=ISSUER, at=ISSUED, trusted_cas=str(bundle))
    assert report.status is SignatureStatus.VALID, report.message
    # Another CA's bundle: intact, not trusted.
    other = certificate("OUTRA AC", new_key(), ca=True)
    (tmp_path / "other.pem").write_bytes(pem(other))
    untrusted = verify(
        signed, issuer_cnpj=ISSUER, at=ISSUED, trusted_cas=str(tmp_path / "other.pem")
    )
    assert untrusted.status is SignatureStatus.INTEGRITY_ONLY


def test_a_certificate_of_another_cnpj_is_flagged(issuer_key: rsa.RSAPrivateKey) -> None:
    cert = certificate("OUTRA EMPRESA:11222333000181", issuer_key)
    report = verify(_signed(cert, issuer_key), issuer_cnpj=ISSUER, at=ISSUED)
    assert report.status is SignatureStatus.INTEGRITY_ONLY
    assert report.certificate_cnpj == "11222333000181" and report.issuer_matches is False


def test_an_unsigned_invoice_is_absent() -> None:
    root = parse(SAMPLE.read_bytes())
    invoice = root.find(f"{NFE}NFe")
    assert invoice is not None
    for old in invoice.findall(f"{DS}Signature"):
        invoice.remove(old)
    assert verify(root, issuer_cnpj=ISSUER, at=ISSUED).status is SignatureStatus.ABSENT


@pytest.mark.parametrize(
    "path",
    [p for p in sample_paths() if b"X509Certificate" in p.read_bytes()],
    ids=lambda p: p.name[:24],
)
def test_nfelibs_edited_samples_do_not_verify(path: Path) -> None:
    root = parse(path.read_bytes())
    assert verify(root, issuer_cnpj=ISSUER, at=ISSUED).status is SignatureStatus.INVALID


def test_a_signed_invoice_inside_its_nfeproc_verifies(issuer_key: rsa.RSAPrivateKey) -> None:
    """The usual shape: the authorized invoice, wrapped with its protocol."""
    cert = certificate(f"EMPRESA TESTE LTDA:{ISSUER}", issuer_key)
    signed = _signed(cert, issuer_key)
    proc = parse(SAMPLE.read_bytes())
    old = proc.find(f"{NFE}NFe")
    assert old is not None
    proc.replace(old, signed)
    wrapped = parse(etree.tostring(proc))
    report = verify(wrapped, issuer_cnpj=ISSUER, at=ISSUED)
    assert report.status is SignatureStatus.INTEGRITY_ONLY, report.message
    protocol = wrapped.find(f"{NFE}protNFe")
    assert protocol is not None  # the protocol sits outside what was signed
    protocol.set("versao", "9.99")
    assert verify(wrapped, issuer_cnpj=ISSUER, at=ISSUED).status is SignatureStatus.INTEGRITY_ONLY
