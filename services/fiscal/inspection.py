"""One document looked at whole: parsed safely, checked against its schema and the
business rules, its signature verified. What validate answers, and what process
decides on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from services.fiscal import events, rules, schemas, signatures, xml_input
from services.fiscal.nfe_fields import N, text
from services.fiscal.rules import Finding, Severity
from services.fiscal.signatures import SignatureReport

NFE = "nfe"
NFCE = "nfce"
CANCELLATION = "cancellation"
_MODELS = {"55": NFE, "65": NFCE}


@dataclass(frozen=True)
class Inspection:
    root: etree._Element
    kind: str  # the root: NFe, nfeProc or procEventoNFe
    document_type: str  # nfe, nfce, cancellation; "" when the model is unknown
    access_key: str
    findings: tuple[Finding, ...]
    signature: SignatureReport

    @property
    def valid(self) -> bool:
        """Nothing SEFAZ would reject the content for (the signature is apart)."""
        return not any(f.severity is Severity.ERROR for f in self.findings)


def _schema_findings(root: etree._Element, kind: str) -> list[Finding]:
    return [
        Finding("xsd", Severity.ERROR, error.path, f"line {error.line}: {error.message}")
        for error in schemas.schema_errors(root, kind)
    ]


def _signed_at(root: etree._Element, kind: str) -> tuple[str, datetime | None]:
    """Who must have signed, and when: the issuer at dhEmi, the author at dhEvento."""
    if kind == "procEventoNFe":
        info = root.find(f"{N}evento/{N}infEvento")
        author = text(info, "CNPJ") or text(info, "CPF")
        moment = text(info, "dhEvento")
    else:
        info = root.find(f".//{N}infNFe")
        author = text(info, "emit/CNPJ") or text(info, "emit/CPF")
        moment = text(info, "ide/dhEmi")
    try:
        return author, datetime.fromisoformat(moment) if moment else None
    except ValueError:
        return author, None


def inspect(
    data: bytes,
    *,
    now: datetime,
    trusted_cas: str | None = None,
    limits: xml_input.Limits = xml_input.DEFAULT_LIMITS,
) -> Inspection:
    """The whole verdict on `data`; XmlRejected when it is not an NF-e document."""
    root = xml_input.parse(data, limits)
    kind = xml_input.kind(root)
    findings = _schema_findings(root, kind)
    if kind == "procEventoNFe":
        info = root.find(f"{N}evento/{N}infEvento")
        findings += events.check(root) if info is not None else []
        access_key, document_type = text(info, "chNFe"), CANCELLATION
    else:
        info = root.find(f".//{N}infNFe")
        findings += rules.check(root, now)
        access_key = (info.get("Id") or "").removeprefix("NFe") if info is not None else ""
        document_type = _MODELS.get(text(info, "ide/mod"), "")
    author, moment = _signed_at(root, kind)
    signature = signatures.verify(
        root, issuer_cnpj=author, at=moment or now, trusted_cas=trusted_cas
    )
    return Inspection(root, kind, document_type, access_key, tuple(findings), signature)
