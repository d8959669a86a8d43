"""What an invoice and its cancellation mean in a merchant's ledger.

Who the merchant is decides the sign: what it sold (it issued an outgoing
invoice, or it is the recipient of an incoming one, a return) is money in,
a credit; what it bought is money out, a debit. Installments (cobr/dup) are
booked one entry each on their due date; without them the whole vNF is one
entry on the issue date. An invoice that moves no money (every payment is
tPag 90, "sem pagamento", and there is no installment) books nothing.

Each entry's request_id is derived from the access key and the installment,
so booking the same invoice twice, at once or after a crash, books once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import IntEnum
from zoneinfo import ZoneInfo

from services.domain.errors import FieldViolation, InvalidArgument
from services.domain.rules import MAX_AMOUNT_CENTS, MAX_YEAR, MIN_YEAR
from services.fiscal.events import Cancellation
from services.fiscal.summary import Summary

ISSUER = "issuer"
RECIPIENT = "recipient"
OUTGOING = "1"  # tpNF
NO_PAYMENT = "90"


class Kind(IntEnum):
    """As lancamentos numbers them."""

    CREDIT = 1
    DEBIT = 2


@dataclass(frozen=True)
class Posting:
    installment: str  # nDup (its position when it has none); "" for a single entry
    reversal: bool
    kind: Kind
    amount_cents: int
    value_date: date
    description: str
    request_id: str


def cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value(ROUND_HALF_EVEN))


REVERSAL_SUFFIX = ":reversal"


def request_id(access_key: str, position: int | None) -> str:
    """`nfe:<key>:<the installment's position, from 1>`, or `nfe:<key>:-` for an
    invoice's single entry. The position, not nDup: nDup is optional in the
    layout and nothing makes it unique, and two installments must never share
    an idempotency key (the second would be taken for a replay of the first)."""
    return f"nfe:{access_key}:{position if position is not None else '-'}"


def role_of(summary: Summary, merchant_document: str) -> str:
    """Whether the merchant issued the invoice or received it."""
    if summary.issuer.document == merchant_document:
        return ISSUER
    if summary.recipient is not None and summary.recipient.document == merchant_document:
        return RECIPIENT
    recipient = summary.recipient.document if summary.recipient else "none"
    raise InvalidArgument(
        [
            FieldViolation(
                "merchant_document",
                f"{merchant_document!r} is neither the issuer ({summary.issuer.document}) "
                f"nor the recipient ({recipient}) of invoice {summary.access_key}",
            )
        ]
    )


def kind_for(role: str, direction: str) -> Kind:
    sold = (role == ISSUER) == (direction == OUTGOING)
    return Kind.CREDIT if sold else Kind.DEBIT


def _local_date(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date() if moment.tzinfo else moment.date()


def postings(summary: Summary, role: str, zone: ZoneInfo) -> list[Posting]:
    """The entries the invoice books in the merchant's ledger."""
    kind = kind_for(role, summary.direction)
    label = (
        f"NF-e {summary.series}/{summary.number}"
        if summary.model == "55"
        else (f"NFC-e {summary.series}/{summary.number}")
    )
    if summary.installments:
        found = [
            Posting(
                number,
                False,
                kind,
                cents(installment.amount),
                installment.due,
                f"{label} parcela {number}"[:255],
                request_id(summary.access_key, position),
            )
            for position, installment in enumerate(summary.installments, start=1)
            for number in [installment.number or str(position)]
        ]
    elif summary.payments and all(p.kind == NO_PAYMENT for p in summary.payments):
        found = []
    else:
        found = [
            Posting(
                "",
                False,
                kind,
                cents(summary.totals.get("vNF", Decimal(0))),
                _local_date(summary.issued_at, zone),
                label,
                request_id(summary.access_key, None),
            )
        ]
    # lancamentos books positive amounts only; a zero installment moves nothing.
    return [p for p in found if p.amount_cents > 0]


def unbookable(planned: list[Posting]) -> str:
    """Why lancamentos would refuse one of the entries for good; "" when it takes
    them all. Said at once, rather than found out later as a parked entry."""
    for posting in planned:
        name = f"installment {posting.installment}" if posting.installment else "the vNF"
        if posting.amount_cents > MAX_AMOUNT_CENTS:
            return f"{name} is over R$ 10 bi, the most one ledger entry may hold"
        if not MIN_YEAR <= posting.value_date.year <= MAX_YEAR:
            return f"{name} falls due in {posting.value_date.year}, outside {MIN_YEAR}-{MAX_YEAR}"
    return ""


def reversal_of(posting: Posting, cancellation: Cancellation, zone: ZoneInfo) -> Posting:
    """The entry that undoes `posting`: on its own date when that is still ahead
    (the receivable never comes), else on the day of the cancellation."""
    cancelled_on = _local_date(cancellation.requested_at, zone)
    return Posting(
        posting.installment,
        True,
        posting.kind,
        posting.amount_cents,
        max(posting.value_date, cancelled_on),
        f"cancelamento: {posting.description}"[:255],
        posting.request_id + REVERSAL_SUFFIX,
    )
