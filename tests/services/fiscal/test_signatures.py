"""NF-e signatures, made the NF-e way in the test (enveloped, C14N 1.0, RSA-SHA1, under a
certificate that names the issuer's CNPJ) and checked: integrity-only under a
self-signed certificate, invalid after one changed byte, valid under a trusted test CA,
a CNPJ mismatch flagged; nfelib's samples (edited after signing) do not verify."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.signer import XMLSigner

from services.fiscal.signatures import DS, SignatureStatus, verify
from services.fiscal.xml_input import parse
from tests.services.fiscal.samples import NFE, SAMPLES, sample_paths

SAMPLE = SAMPLES / "35180834128745000152550010000474281920007498-nfe.xml"
ISSUER = "34128745000152"
ISSUED = datetime(2018, 8, 7, 12, tzinfo=UTC)


class NfeSigner(XMLSigner):
    """As NF-e issuers sign: SHA-1 (which signxml refuses unless told), legacy C14N."""

    excise_empty_xmlns_declarations = True

    def check_deprecated_methods(self) -> None:
        pass


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(
    subject_cn: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[x509.Name, rsa.RSAPrivateKey] | None = None,
    *,
    ca: bool = False,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    issuer_name, signing_key = issuer if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ISSUED - timedelta(days=30))
        .not_valid_after(ISSUED + timedelta(days=335))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        # A CA signs certificates; the issuer's certificate signs documents.
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(signing_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _signed(certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> etree._Element:
    """The sample's NFe, its old signature dropped, signed again the NF-e way."""
    root = parse(SAMPLE.read_bytes())
    invoice = copy.deepcopy(root.find(f"{NFE}NFe"))
    assert invoice is not None
    for old in invoice.findall(f"{DS}Signature"):
        invoice.remove(old)
    info = invoice.find(f"{NFE}infNFe")
    assert info is not None
    signer = NfeSigner(
        signature_algorithm=SignatureMethod.RSA_SHA1,
        digest_algorithm=DigestAlgorithm.SHA1,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    signed: etree._Element = signer.sign(
        invoice,
        key=key,
        cert=[_pem(certificate).decode()],
        reference_uri=f"#{info.get('Id')}",
        id_attribute="Id",
    )
    return parse(etree.tostring(signed))


@pytest.fixture(scope="module")
def issuer_key() -> rsa.RSAPrivateKey:
    return _key()


def test_self_signed_is_integrity_only_and_one_byte_breaks_it(
    issuer_key: rsa.RSAPrivateKey,
) -> None:
    certificate = _certificate(f"EMPRESA TESTE LTDA:{ISSUER}", issuer_key)
    signed = _signed(certificate, issuer_key)
    report = verify(signed, issuer_cnpj=ISSUER, at=ISSUED)
    assert report.status is SignatureStatus.INTEGRITY_ONLY, report.message
    assert report.certificate_cnpj == ISSUER and report.issuer_matches is True
    # One changed byte of the signed content.
    name = signed.find(f".//{NFE}dest/{NFE}xNome")
    assert name is not None and name.text
    name.text = name.text[:-1] + ("X" if name.text[-1] != "X" else "Y")
    assert verify(signed, issuer_cnpj=ISSUER, at=ISSUED).status is SignatureStatus.INVALID


def test_a_trusted_ca_makes_it_valid(issuer_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    ca_key = _key()
    ca = _certificate("AC TESTE ICP-BRASIL", ca_key, ca=True)
    leaf = _certificate(f"EMPRESA TESTE LTDA:{ISSUER}", issuer_key, (ca.subject, ca_key))
    signed = _signed(leaf, issuer_key)
    bundle = tmp_path / "icp-brasil.pem"
    bundle.write_bytes(_pem(ca))
    report = verify(signed, issuer_cnpj=ISSUER, at=ISSUED, trusted_cas=str(bundle))
    assert report.status is SignatureStatus.VALID, report.message
    # Another CA's bundle: intact, not trusted.
    other = _certificate("OUTRA AC", _key(), ca=True)
    (tmp_path / "other.pem").write_bytes(_pem(other))
    untrusted = verify(
        signed, issuer_cnpj=ISSUER, at=ISSUED, trusted_cas=str(tmp_path / "other.pem")
    )
    assert untrusted.status is SignatureStatus.INTEGRITY_ONLY


def test_a_certificate_of_another_cnpj_is_flagged(issuer_key: rsa.RSAPrivateKey) -> None:
    certificate = _certificate("OUTRA EMPRESA:11222333000181", issuer_key)
    report = verify(_signed(certificate, issuer_key), issuer_cnpj=ISSUER, at=ISSUED)
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
    certificate = _certificate(f"EMPRESA TESTE LTDA:{ISSUER}", issuer_key)
    signed = _signed(certificate, issuer_key)
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
