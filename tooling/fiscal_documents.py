"""NF-e documents made the way issuers make them, for the tests and the bench: a
sample from nfelib, changed as needed (its installments, its number), signed again
(enveloped, C14N 1.0, RSA-SHA1) under a certificate that names the issuer's CNPJ,
wrapped with its protocol; and cancellation events (procEventoNFe 110111) signed by
the issuer. The keys are made here: never use them for anything real."""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.signer import XMLSigner

from services.fiscal.identifiers import key_check_digit

NFE = "{http://www.portalfiscal.inf.br/nfe}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
SAMPLES = Path(str(files("nfelib"))) / "nfe" / "samples" / "v4_0" / "leiauteNFe"
# An authorized outgoing NF-e without a finding: sold by ISSUER to a person (RECIPIENT).
SAMPLE = SAMPLES / "35180834128745000152550010000474281920007498-nfe.xml"
ACCESS_KEY = "35180834128745000152550010000474281920007498"
ISSUER = "34128745000152"
RECIPIENT = "68161525650"  # a CPF
PROTOCOL = "135180527657478"
ISSUED = datetime(2018, 8, 7, 12, tzinfo=UTC)


class NfeSigner(XMLSigner):
    """As NF-e issuers sign: SHA-1 (which signxml refuses unless told), legacy C14N."""

    excise_empty_xmlns_declarations = True

    def check_deprecated_methods(self) -> None:
        pass


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(
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


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Signer:
    """An issuer's key and certificate."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def self_signed(cls, cnpj: str = ISSUER) -> Signer:
        key = new_key()
        return cls(key, certificate(f"EMPRESA TESTE LTDA:{cnpj}", key))

    def sign(self, element: etree._Element, signed_id: str) -> etree._Element:
        """`element` with its old Signature dropped and a new one appended."""
        element = copy.deepcopy(element)
        for old in element.findall(f"{DS}Signature"):
            element.remove(old)
        signer = NfeSigner(
            signature_algorithm=SignatureMethod.RSA_SHA1,
            digest_algorithm=DigestAlgorithm.SHA1,
            c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,
        )
        signed: etree._Element = signer.sign(
            element,
            key=self.key,
            cert=[pem(self.certificate).decode()],
            reference_uri=f"#{signed_id}",
            id_attribute="Id",
        )
        return etree.fromstring(etree.tostring(signed))


def _set(parent: etree._Element, path: str, value: str) -> None:
    element = parent.find("/".join(f"{NFE}{p}" for p in path.split("/")))
    assert element is not None, path
    element.text = value


def numbered_key(key: str, number: int) -> str:
    """`key` with nNF (positions 26-34) set to `number` and its check digit redone."""
    first = f"{key[:25]}{number:09d}{key[34:43]}"
    return f"{first}{key_check_digit(first)}"


def _renumber(proc: etree._Element, info: etree._Element, number: int) -> None:
    key = numbered_key(str(info.get("Id")).removeprefix("NFe"), number)
    info.set("Id", f"NFe{key}")
    _set(info, "ide/nNF", str(number))
    _set(info, "ide/cDV", key[-1])
    if proc.find(f"{NFE}protNFe") is not None:
        _set(proc, "protNFe/infProt/chNFe", key)


def invoice(
    signer: Signer,
    *,
    installments: list[tuple[str, str, str]] | None = None,
    status: str = "100",
    wrapped: bool = True,
    sample: Path = SAMPLE,
    number: int | None = None,
) -> bytes:
    """The sample, its installments replaced by (nDup, dVenc, vDup) when given and its
    nNF (hence its key) by `number`, signed by `signer`, inside an nfeProc with
    protocol `status` (or bare)."""
    proc = etree.fromstring(sample.read_bytes())
    nfe = proc.find(f"{NFE}NFe")
    assert nfe is not None
    info = nfe.find(f"{NFE}infNFe")
    assert info is not None
    if number is not None:
        _renumber(proc, info, number)
    if installments is not None:
        cobr = info.find(f"{NFE}cobr")
        assert cobr is not None
        for dup in cobr.findall(f"{NFE}dup"):
            cobr.remove(dup)
        for installment, due, amount in installments:
            dup = etree.SubElement(cobr, f"{NFE}dup")
            for tag, value in (("nDup", installment), ("dVenc", due), ("vDup", amount)):
                etree.SubElement(dup, f"{NFE}{tag}").text = value
    signed = signer.sign(nfe, str(info.get("Id")))
    if not wrapped:
        return etree.tostring(signed)
    proc.replace(nfe, signed)
    _set(proc, "protNFe/infProt/cStat", status)
    if status != "100":
        _set(proc, "protNFe/infProt/xMotivo", "Rejeicao: teste")
    return etree.tostring(proc)


def cancellation(
    signer: Signer,
    *,
    access_key: str = ACCESS_KEY,
    author: str = ISSUER,
    invoice_protocol: str = PROTOCOL,
    status: str = "135",
    requested_at: str = "2018-08-07T15:00:00-03:00",
) -> bytes:
    """A procEventoNFe cancelling `access_key`, signed by `signer`, answered `status`."""
    event_id = f"ID110111{access_key}01"
    ns = NFE[1:-1]
    evento = etree.Element(f"{NFE}evento", versao="1.00", nsmap={None: ns})
    info = etree.SubElement(evento, f"{NFE}infEvento", Id=event_id)
    for tag, value in (
        ("cOrgao", access_key[:2]),
        ("tpAmb", "1"),
        ("CNPJ", author),
        ("chNFe", access_key),
        ("dhEvento", requested_at),
        ("tpEvento", "110111"),
        ("nSeqEvento", "1"),
        ("verEvento", "1.00"),
    ):
        etree.SubElement(info, f"{NFE}{tag}").text = value
    detail = etree.SubElement(info, f"{NFE}detEvento", versao="1.00")
    for tag, value in (
        ("descEvento", "Cancelamento"),
        ("nProt", invoice_protocol),
        ("xJust", "Pedido cancelado pelo cliente"),
    ):
        etree.SubElement(detail, f"{NFE}{tag}").text = value
    signed = signer.sign(evento, event_id)
    proc = etree.Element(f"{NFE}procEventoNFe", versao="1.00", nsmap={None: ns})
    proc.append(signed)
    answer = etree.SubElement(
        etree.SubElement(proc, f"{NFE}retEvento", versao="1.00"), f"{NFE}infEvento"
    )
    for tag, value in (
        ("tpAmb", "1"),
        ("verAplic", "SP_EVENTOS_PL_100"),
        ("cOrgao", access_key[:2]),
        ("cStat", status),
        ("xMotivo", "Evento registrado e vinculado a NF-e"),
        ("chNFe", access_key),
        ("tpEvento", "110111"),
        ("xEvento", "Cancelamento registrado"),
        ("nSeqEvento", "1"),
        ("dhRegEvento", requested_at),
        ("nProt", "135180000000001"),
    ):
        etree.SubElement(answer, f"{NFE}{tag}").text = value
    return etree.tostring(proc)


def main(argv: list[str] | None = None) -> None:
    """`python -m tooling.fiscal_documents invoice|cancellation [--number N] ...`:
    one document on stdout, to try fiscal with (its keys are made up)."""
    parser = argparse.ArgumentParser(
        prog="python -m tooling.fiscal_documents", description=main.__doc__
    )
    parser.add_argument("kind", choices=["invoice", "cancellation"])
    parser.add_argument("--number", type=int, default=1, help="nNF, which makes the access key")
    parser.add_argument(
        "--installments", type=int, default=0, help="split vNF (347.28) into this many, monthly"
    )
    parser.add_argument("--status", default="", help="cStat (default: 100, or 135 for an event)")
    args = parser.parse_args(argv)
    signer = Signer.self_signed()
    key = numbered_key(ACCESS_KEY, args.number)
    if args.kind == "cancellation":
        data = cancellation(signer, access_key=key, status=args.status or "135")
    else:
        split = None
        if args.installments:
            cents, n = 34728, args.installments
            parts = [cents // n + (1 if i < cents % n else 0) for i in range(n)]
            split = [
                (
                    str(i + 1),
                    f"2018-{8 + i:02d}-24" if i < 5 else f"2019-{i - 4:02d}-24",
                    f"{p / 100:.2f}",
                )
                for i, p in enumerate(parts)
            ]
        data = invoice(signer, installments=split, number=args.number, status=args.status or "100")
    sys.stdout.buffer.write(data)


if __name__ == "__main__":
    main()
