"""Cancellation events (procEventoNFe with tpEvento 110111): what they say, and
the checks the schema cannot make."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from services.fiscal.identifiers import cnpj_is_valid, cpf_is_valid, parse_key
from services.fiscal.nfe_fields import N, text
from services.fiscal.rules import Finding, Severity, path_of

CANCELLATION = "110111"
# retEvento cStat of a cancellation SEFAZ registered: in time, out of time.
REGISTERED = frozenset({"135", "155"})


class EventError(ValueError):
    """The event lacks what every cancellation has (the schema check says why)."""


@dataclass(frozen=True)
class Cancellation:
    access_key: str  # of the invoice it cancels
    author: str  # CNPJ or CPF of whoever asked
    requested_at: datetime  # dhEvento
    invoice_protocol: str  # nProt of the authorization it cancels
    justification: str
    status: str  # retEvento cStat; "" without one
    status_reason: str
    event_protocol: str  # retEvento nProt

    @property
    def registered(self) -> bool:
        """SEFAZ registered it: only then does the invoice stop counting."""
        return self.status in REGISTERED


def _info(root: etree._Element) -> etree._Element:
    info = root.find(f"{N}evento/{N}infEvento")
    if info is None:
        raise EventError("the document has no evento/infEvento")
    return info


def read(root: etree._Element) -> Cancellation:
    info = _info(root)
    if text(info, "tpEvento") != CANCELLATION:
        raise EventError(f"tpEvento {text(info, 'tpEvento')!r} is not a cancellation (110111)")
    try:
        requested = datetime.fromisoformat(text(info, "dhEvento"))
    except ValueError:
        raise EventError("the event has no dhEvento date-time") from None
    answer = root.find(f"{N}retEvento/{N}infEvento")
    return Cancellation(
        access_key=text(info, "chNFe"),
        author=text(info, "CNPJ") or text(info, "CPF"),
        requested_at=requested,
        invoice_protocol=text(info, "detEvento/nProt"),
        justification=text(info, "detEvento/xJust"),
        status=text(answer, "cStat"),
        status_reason=text(answer, "xMotivo"),
        event_protocol=text(answer, "nProt"),
    )


def check(root: etree._Element) -> list[Finding]:
    """The event's own consistency: its key, its Id, its author, its answer."""
    info = _info(root)
    findings: list[Finding] = []
    key_element = info.find(f"{N}chNFe")
    key = parse_key(text(info, "chNFe"))
    if key_element is not None and (key is None or not key.digits_ok):
        findings.append(
            Finding("236", Severity.ERROR, path_of(key_element), "chNFe's check digit is wrong")
        )
    sequence = text(info, "nSeqEvento").zfill(2)
    expected_id = f"ID{text(info, 'tpEvento')}{text(info, 'chNFe')}{sequence}"
    if info.get("Id") != expected_id:
        findings.append(
            Finding(
                "caixa:eventId",
                Severity.ERROR,
                path_of(info) + "/@Id",
                f"Id is {info.get('Id')!r}; tpEvento, chNFe and nSeqEvento make {expected_id!r}",
            )
        )
    for tag, valid in (("CNPJ", cnpj_is_valid), ("CPF", cpf_is_valid)):
        element = info.find(f"{N}{tag}")
        if element is not None and not valid(element.text or ""):
            findings.append(
                Finding(
                    "caixa:author",
                    Severity.ERROR,
                    path_of(element),
                    f"{tag}'s check digits are wrong",
                )
            )
    answer = root.find(f"{N}retEvento/{N}infEvento")
    if (
        answer is not None
        and text(answer, "chNFe")
        and text(answer, "chNFe") != text(info, "chNFe")
    ):
        findings.append(
            Finding(
                "caixa:retEvento",
                Severity.ERROR,
                path_of(answer) + "/chNFe",
                "the answer is for another invoice than the event",
            )
        )
    return findings
