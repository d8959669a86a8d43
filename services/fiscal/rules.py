"""The business rules SEFAZ applies to an NF-e beyond its schema, each finding under
SEFAZ's own rejection code where one exists (Manual de Orientação do Contribuinte and
its technical notes), else under a `caixa:` code.

Sums compare with SEFAZ's tolerance of one centavo either way. Only what the schema
already guarantees is assumed present; a missing total or item value is left to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum

from lxml import etree

from services.fiscal import identifiers
from services.fiscal.nfe_fields import N, text
from services.fiscal.nfe_fields import decimal as _decimal

CENT = Decimal("0.01")
# A clock ahead by this much still counts as now (SEFAZ allows its own margin).
CLOCK_SKEW = timedelta(minutes=5)
# tPag 90: "sem pagamento" (no payment group amounts to check).
NO_PAYMENT = "90"


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    path: str  # local names from infNFe down, items as det[nItem]
    message: str


def _local(element: etree._Element) -> str:
    name = etree.QName(element).localname
    if name == "det":
        return f"det[{element.get('nItem')}]"
    return name


def path_of(element: etree._Element) -> str:
    names = []
    node: etree._Element | None = element
    while node is not None:
        names.append(_local(node))
        if names[-1] == "infNFe":
            break
        node = node.getparent()
    return "/".join(reversed(names))


def _sum(elements: Iterable[etree._Element]) -> Decimal:
    return sum((_decimal(e) or Decimal(0) for e in elements), Decimal(0))


def _error(code: str, element: etree._Element, message: str) -> Finding:
    return Finding(code, Severity.ERROR, path_of(element), message)


def _key_findings(info: etree._Element) -> list[Finding]:
    key_text = (info.get("Id") or "").removeprefix("NFe")
    key = identifiers.parse_key(key_text)
    if key is None:
        return [
            Finding(
                "502",
                Severity.ERROR,
                "infNFe/@Id",
                f"the access key {key_text!r} is not 44 characters of the layout",
            )
        ]
    findings = []
    if not key.digits_ok:
        expected = identifiers.key_check_digit(key_text[:43])
        findings.append(
            Finding(
                "253",
                Severity.ERROR,
                "infNFe/@Id",
                f"the key's check digit is {key.check_digit}; it must be {expected}",
            )
        )
    ide, emit = info.find(f"{N}ide"), info.find(f"{N}emit")
    issuer = text(emit, "CNPJ") or text(emit, "CPF").zfill(14)
    issued = text(ide, "dhEmi")
    fields = {
        "cUF": (key.uf, text(ide, "cUF")),
        "dhEmi": (key.year_month, issued[2:4] + issued[5:7]),
        "CNPJ": (key.issuer, issuer),
        "mod": (key.model, text(ide, "mod")),
        "serie": (key.series, text(ide, "serie").zfill(3)),
        "nNF": (key.number, text(ide, "nNF").zfill(9)),
        "tpEmis": (key.emission, text(ide, "tpEmis")),
        "cNF": (key.code, text(ide, "cNF").zfill(8)),
        "cDV": (key.check_digit, text(ide, "cDV")),
    }
    for name, (in_key, in_fields) in fields.items():
        if in_key != in_fields:
            where = "emit" if name == "CNPJ" else "ide"
            findings.append(
                Finding(
                    "502",
                    Severity.ERROR,
                    f"infNFe/{where}/{name}",
                    f"the key says {in_key!r}, {name} says {in_fields!r}",
                )
            )
    return findings


def _party_findings(info: etree._Element) -> list[Finding]:
    findings = []
    emit = info.find(f"{N}emit")
    cnpj = emit.find(f"{N}CNPJ") if emit is not None else None
    if cnpj is not None and not identifiers.cnpj_is_valid((cnpj.text or "").strip()):
        findings.append(_error("207", cnpj, f"the issuer's CNPJ {cnpj.text!r} is not valid"))
    dest = info.find(f"{N}dest")
    if dest is not None:
        for name, code, valid in (
            ("CNPJ", "208", identifiers.cnpj_is_valid),
            ("CPF", "237", identifiers.cpf_is_valid),
        ):
            element = dest.find(f"{N}{name}")
            if element is not None and not valid((element.text or "").strip()):
                findings.append(
                    _error(code, element, f"the recipient's {name} {element.text!r} is not valid")
                )
    return findings


# Per ICMSTot field: its code, and the item values it must be the sum of.
ITEM_SUMS = {
    "vProd": ("564", f"{N}prod/{N}vProd"),
    "vFrete": ("535", f"{N}prod/{N}vFrete"),
    "vSeg": ("536", f"{N}prod/{N}vSeg"),
    "vDesc": ("537", f"{N}prod/{N}vDesc"),
    "vOutro": ("caixa:vOutro", f"{N}prod/{N}vOutro"),
    "vIPI": ("538", f"{N}imposto/{N}IPI/{N}IPITrib/{N}vIPI"),
    "vPIS": ("602", f"{N}imposto/{N}PIS/*/{N}vPIS"),
    "vCOFINS": ("603", f"{N}imposto/{N}COFINS/*/{N}vCOFINS"),
}


def _total_findings(info: etree._Element) -> list[Finding]:
    totals = info.find(f"{N}total/{N}ICMSTot")
    if totals is None:
        return []
    items = info.findall(f"{N}det")
    # Items with indTot 0 do not add to the invoice's total product value.
    counted = [d for d in items if text(d.find(f"{N}prod"), "indTot") != "0"]
    findings = []
    for name, (code, item_path) in ITEM_SUMS.items():
        element = totals.find(f"{N}{name}")
        stated = _decimal(element)
        if element is None or stated is None:
            continue
        from_items = counted if name == "vProd" else items
        summed = _sum(e for d in from_items for e in d.findall(item_path))
        if abs(stated - summed) > CENT:
            findings.append(
                _error(code, element, f"{name} is {stated}; the items add up to {summed}")
            )
    imports = any(text(d.find(f"{N}prod"), "CFOP").startswith("3") for d in items)
    vnf = totals.find(f"{N}vNF")
    stated = _decimal(vnf)
    if vnf is not None and stated is not None and not imports:

        def get(name: str) -> Decimal:
            return _decimal(totals.find(f"{N}{name}")) or Decimal(0)

        services = _decimal(info.find(f"{N}total/{N}ISSQNtot/{N}vServ")) or Decimal(0)
        formula = (
            get("vProd")
            - get("vDesc")
            - get("vICMSDeson")
            + get("vST")
            + get("vFCPST")
            + get("vFrete")
            + get("vSeg")
            + get("vOutro")
            + get("vII")
            + get("vIPI")
            + get("vIPIDevol")
            + services
        )
        if abs(stated - formula) > CENT:
            findings.append(_error("610", vnf, f"vNF is {stated}; its formula gives {formula}"))
    return findings


def _payment_findings(info: etree._Element) -> list[Finding]:
    pag = info.find(f"{N}pag")
    vnf = _decimal(info.find(f"{N}total/{N}ICMSTot/{N}vNF"))
    if pag is None or vnf is None:
        return []
    payments = pag.findall(f"{N}detPag")
    if all(text(p, "tPag") == NO_PAYMENT for p in payments):
        return []
    paid = _sum(amount for p in payments for amount in p.findall(f"{N}vPag"))
    change = pag.find(f"{N}vTroco")
    given = _decimal(change)
    if paid + CENT < vnf:
        return [_error("865", pag, f"the payments add up to {paid}, less than vNF {vnf}")]
    if paid > vnf + CENT:
        if change is None or given is None:
            return [
                _error("866", pag, f"the payments add up to {paid}, over vNF {vnf}, with no vTroco")
            ]
        if abs(given - (paid - vnf)) > CENT:
            return [_error("869", change, f"vTroco is {given}; the payments leave {paid - vnf}")]
    elif change is not None and given is not None and given > CENT:
        return [_error("869", change, f"vTroco is {given}; the payments leave none")]
    return []


def _date_findings(root: etree._Element, info: etree._Element, now: datetime) -> list[Finding]:
    ide = info.find(f"{N}ide")
    element = ide.find(f"{N}dhEmi") if ide is not None else None
    if element is None or not element.text:
        return []
    try:
        issued = datetime.fromisoformat(element.text.strip())
    except ValueError:
        return [_error("caixa:dhEmi", element, f"dhEmi {element.text!r} is not a date-time")]
    if issued.tzinfo is None:
        return [_error("caixa:dhEmi", element, "dhEmi has no UTC offset")]
    if issued > now + CLOCK_SKEW:
        return [_error("703", element, f"dhEmi {element.text} is in the future")]
    findings = []
    received = root.find(f"{N}protNFe/{N}infProt/{N}dhRecbto")
    if received is not None and received.text:
        try:
            authorized = datetime.fromisoformat(received.text.strip())
        except ValueError:
            authorized = None
        if authorized is not None and authorized.tzinfo and authorized + CLOCK_SKEW < issued:
            findings.append(
                _error(
                    "703",
                    element,
                    f"dhEmi {element.text} is after its authorization {received.text}",
                )
            )
    return findings


def check(root: etree._Element, now: datetime) -> list[Finding]:
    """Every business-rule finding of an NFe or nfeProc, in a stable order."""
    info = root.find(f".//{N}infNFe")
    if info is None:
        return []
    return [
        *_key_findings(info),
        *_party_findings(info),
        *_total_findings(info),
        *_payment_findings(info),
        *_date_findings(root, info, now),
    ]
