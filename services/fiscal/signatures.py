"""The NF-e's XML signature: enveloped XMLDSig over infNFe, C14N 1.0, RSA-SHA1.

Integrity is checked against the certificate the signature carries. Trust is checked
against an ICP-Brasil CA bundle, when one is configured, at the invoice's issue time
(a certificate may have expired since). The certificate must also name the issuer's
CNPJ: ICP-Brasil puts it in a SAN otherName (OID 2.16.76.1.3.3); older certificates
put it after the subject CN's colon.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration, XMLVerifier

from services.fiscal.nfe_fields import N

DS = "{http://www.w3.org/2000/09/xmldsig#}"
CNPJ_OID = x509.ObjectIdentifier("2.16.76.1.3.3")
_CNPJ_IN_CN = re.compile(r":([0-9A-Z]{12}[0-9]{2})$")


class SignatureStatus(Enum):
    VALID = "valid"  # intact, and the certificate chains to a trusted CA
    INTEGRITY_ONLY = "integrity_only"  # intact, under a certificate no trusted CA vouches for
    INVALID = "invalid"
    ABSENT = "absent"


@dataclass(frozen=True)
class SignatureReport:
    status: SignatureStatus
    message: str
    certificate_cnpj: str = ""
    # False: the certificate names another CNPJ than the issuer's (a finding on its own).
    issuer_matches: bool | None = None


class _NfeVerifier(XMLVerifier):
    # NF-e signers canonicalize with the legacy behaviour (signxml issue 193).
    excise_empty_xmlns_declarations = True


def _config(at: datetime) -> SignatureConfiguration:
    return SignatureConfiguration(
        signature_methods=frozenset({SignatureMethod.RSA_SHA1}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA1}),
        verification_time=at,
    )


def certificate_cnpj(certificate: x509.Certificate) -> str:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        for other in names.value.get_values_for_type(x509.OtherName):
            if other.type_id == CNPJ_OID:
                # A DER string: the last 14 characters are the CNPJ.
                text = other.value.decode("latin-1")
                return re.sub(r"[^0-9A-Z]", "", text)[-14:]
    except x509.ExtensionNotFound:
        pass
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        found = _CNPJ_IN_CN.search(str(attribute.value))
        if found:
            return found.group(1)
    return ""


def _embedded(signature: etree._Element) -> tuple[x509.Certificate, str] | None:
    """The embedded certificate and the CNPJ it names."""
    text = signature.findtext(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    if not text:
        return None
    return _certificate("".join(text.split()))


# An issuer signs all its invoices with one certificate: parse it once.
@functools.lru_cache(maxsize=1024)
def _certificate(body: str) -> tuple[x509.Certificate, str] | None:
    pem = "-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----\n"
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return None
    return certificate, certificate_cnpj(certificate)


def _signed_part(root: etree._Element) -> etree._Element | None:
    """What the issuer signed: the NFe (the protocol around it is SEFAZ's), the evento."""
    name = etree.QName(root).localname
    if name == "NFe":
        return root
    return root.find(f"{N}NFe" if name == "nfeProc" else f"{N}evento")


def verify(
    root: etree._Element, *, issuer_cnpj: str, at: datetime, trusted_cas: str | None = None
) -> SignatureReport:
    """The signature of the NFe in `root` (an NFe or an nfeProc), or of the event in
    a procEventoNFe. `trusted_cas`: the path of a PEM bundle of the CAs to trust
    (ICP-Brasil's), or None for integrity only."""
    invoice = _signed_part(root)
    signature = invoice.find(f"{DS}Signature") if invoice is not None else None
    if invoice is None or signature is None:
        return SignatureReport(SignatureStatus.ABSENT, "the document is not signed")
    embedded = _embedded(signature)
    if embedded is None:
        return SignatureReport(SignatureStatus.INVALID, "the signature carries no certificate")
    certificate, cnpj = embedded
    matches = cnpj == issuer_cnpj if cnpj else False
    verifier = _NfeVerifier()
    data = etree.tostring(invoice)
    try:
        verifier.verify(data, x509_cert=certificate, id_attribute="Id", expect_config=_config(at))
    except (InvalidSignature, InvalidInput, InvalidCertificate) as error:
        return SignatureReport(
            SignatureStatus.INVALID, f"the signature does not verify: {error}", cnpj, matches
        )
    if trusted_cas is None:
        return SignatureReport(
            SignatureStatus.INTEGRITY_ONLY, "intact; no trusted CA is configured", cnpj, matches
        )
    try:
        verifier.verify(data, ca_pem_file=trusted_cas, id_attribute="Id", expect_config=_config(at))
    except (InvalidSignature, InvalidInput, InvalidCertificate) as error:
        return SignatureReport(
            SignatureStatus.INTEGRITY_ONLY,
            f"intact, but no trusted CA vouches for it: {error}",
            cnpj,
            matches,
        )
    return SignatureReport(SignatureStatus.VALID, "intact and trusted", cnpj, matches)
