"""What an NF-e says, read once: identification, the parties, every total, the
payments and the installments, and the authorization protocol. Amounts stay Decimal
as written; the transport decides how to carry them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from lxml import etree

from services.fiscal.nfe_fields import N, text

# tPag (Manual de Orientação, NT 2020.006 and NT 2023.004).
PAYMENT_KINDS = {
    "01": "Dinheiro",
    "02": "Cheque",
    "03": "Cartão de Crédito",
    "04": "Cartão de Débito",
    "05": "Crédito Loja",
    "10": "Vale Alimentação",
    "11": "Vale Refeição",
    "12": "Vale Presente",
    "13": "Vale Combustível",
    "15": "Boleto Bancário",
    "16": "Depósito Bancário",
    "17": "Pagamento Instantâneo (PIX) - Dinâmico",
    "18": "Transferência bancária, Carteira Digital",
    "19": "Programa de fidelidade, Cashback, Crédito Virtual",
    "20": "Pagamento Instantâneo (PIX) - Estático",
    "21": "Crédito em Loja",
    "22": "Pagamento Eletrônico não Informado - falha de hardware do sistema emissor",
    "90": "Sem pagamento",
    "99": "Outros",
}
# cStat of an invoice that may be booked: authorized, authorized out of time.
AUTHORIZED = frozenset({"100", "150"})


class SummaryError(ValueError):
    """The document lacks what every NF-e has (the schema check reports why)."""


@dataclass(frozen=True)
class Party:
    document: str  # CNPJ, CPF or idEstrangeiro
    name: str
    uf: str


@dataclass(frozen=True)
class Payment:
    kind: str  # tPag
    label: str
    amount: Decimal


@dataclass(frozen=True)
class Installment:
    number: str
    due: date
    amount: Decimal


@dataclass(frozen=True)
class Protocol:
    status: str  # cStat
    number: str  # nProt
    received_at: datetime | None
    reason: str  # xMotivo

    @property
    def authorized(self) -> bool:
        return self.status in AUTHORIZED


@dataclass(frozen=True)
class Summary:
    access_key: str
    model: str
    series: str
    number: str
    issued_at: datetime
    direction: str  # tpNF: 0 incoming, 1 outgoing
    nature: str  # natOp
    environment: str  # tpAmb: 1 production, 2 homologation
    issuer: Party
    recipient: Party | None
    totals: dict[str, Decimal]  # ICMSTot, by field name
    ibs_cbs_totals: dict[str, Decimal]  # IBSCBSTot flattened ("gIBS/vIBS"), when present
    item_count: int
    payments: tuple[Payment, ...]
    change: Decimal
    installments: tuple[Installment, ...]
    protocol: Protocol | None


# The layout's amounts have at most 13 integer digits (TDec_1302): more is no amount.
_MAX_AMOUNT = Decimal(10) ** 13


def _amount(text: str) -> Decimal:
    try:
        found = Decimal(text) if text else Decimal(0)
    except InvalidOperation:
        raise SummaryError(f"{text!r} is not an amount") from None
    if not found.is_finite() or abs(found) >= _MAX_AMOUNT:
        raise SummaryError(f"{text!r} is not an amount of the layout (13 digits at most)")
    return found


def _party(element: etree._Element | None, name_path: str, uf_path: str) -> Party | None:
    if element is None:
        return None
    document = text(element, "CNPJ") or text(element, "CPF") or text(element, "idEstrangeiro")
    return Party(document, text(element, name_path), text(element, uf_path))


def _decimals(element: etree._Element | None, prefix: str = "") -> dict[str, Decimal]:
    """Every leaf below `element` with a numeric value, by its path of local names."""
    found: dict[str, Decimal] = {}
    if element is None:
        return found
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = prefix + etree.QName(child).localname
        if len(child):
            found.update(_decimals(child, name + "/"))
        elif child.text:
            try:
                found[name] = _amount(child.text.strip())
            except SummaryError:
                continue  # not a total the summary can carry; the schema says why
    return found


def _datetime(text: str) -> datetime | None:
    """A date-time of the layout (with its UTC offset, 1970 to 2199), else None."""
    try:
        found = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    if found is None or found.tzinfo is None or not 1970 <= found.year <= 2199:
        return None
    return found


def summarize(root: etree._Element) -> Summary:
    info = root.find(f".//{N}infNFe")
    if info is None:
        raise SummaryError("the document has no infNFe")
    ide = info.find(f"{N}ide")
    issued = _datetime(text(ide, "dhEmi"))
    if ide is None or issued is None:
        raise SummaryError(
            "the document has no ide/dhEmi date-time with its UTC offset, 1970 to 2199"
        )
    issuer = _party(info.find(f"{N}emit"), "xNome", "enderEmit/UF")
    if issuer is None:
        raise SummaryError("the document has no emit")
    pag = info.find(f"{N}pag")
    payments = tuple(
        Payment(kind, PAYMENT_KINDS.get(kind, "desconhecido"), _amount(text(p, "vPag")))
        for p in (pag.findall(f"{N}detPag") if pag is not None else [])
        for kind in [text(p, "tPag")]
    )
    installments = []
    for dup in info.findall(f"{N}cobr/{N}dup"):
        try:
            due = date.fromisoformat(text(dup, "dVenc"))
        except ValueError:
            raise SummaryError(f"installment {text(dup, 'nDup')!r} has no due date") from None
        installments.append(Installment(text(dup, "nDup"), due, _amount(text(dup, "vDup"))))
    infprot = root.find(f"{N}protNFe/{N}infProt")
    protocol = None
    if infprot is not None:
        protocol = Protocol(
            status=text(infprot, "cStat"),
            number=text(infprot, "nProt"),
            received_at=_datetime(text(infprot, "dhRecbto")),
            reason=text(infprot, "xMotivo"),
        )
    return Summary(
        access_key=(info.get("Id") or "").removeprefix("NFe"),
        model=text(ide, "mod"),
        series=text(ide, "serie"),
        number=text(ide, "nNF"),
        issued_at=issued,
        direction=text(ide, "tpNF"),
        nature=text(ide, "natOp"),
        environment=text(ide, "tpAmb"),
        issuer=issuer,
        recipient=_party(info.find(f"{N}dest"), "xNome", "enderDest/UF"),
        totals=_decimals(info.find(f"{N}total/{N}ICMSTot")),
        ibs_cbs_totals=_decimals(info.find(f"{N}total/{N}IBSCBSTot")),
        item_count=len(info.findall(f"{N}det")),
        payments=payments,
        change=_amount(text(pag, "vTroco")),
        installments=tuple(installments),
        protocol=protocol,
    )
