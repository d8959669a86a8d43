"""fiscal's use cases: validate, summarize, process (book or cancel), look up.

The CPU-heavy part (parsing, the schema, the signature) runs in worker threads:
lxml and OpenSSL release the GIL for most of it, and the event loop keeps
answering health checks and other calls meanwhile. Bookings are group-committed
(services.platform.group_commit): concurrent invoices share one transaction, so
the audit trail's lock and the WAL flush are paid once per batch, not per invoice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypedDict
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.domain.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from services.fiscal import booking, events, inspection, store, summary, xml_input
from services.fiscal.identifiers import cnpj_is_valid, cpf_is_valid, parse_key
from services.fiscal.inspection import Inspection
from services.fiscal.rules import Finding
from services.fiscal.signatures import SignatureStatus
from services.fiscal.store import NOTIFY_CHANNEL, StoredDocument
from services.fiscal.xml_input import Limits, XmlRejected
from services.platform import audit
from services.platform.group_commit import GroupCommitter
from services.platform.trace_context import current_traceparent

log = logging.getLogger(__name__)

ACCEPTED = "accepted"
POSTED = "posted"
CANCELLED = "cancelled"
REJECTED = "rejected"

BOOKED = "booked"  # audit outcomes
CANCELLED_OUTCOME = "cancelled"
REJECTED_OUTCOME = "rejected"
REGISTERED = "registered"


@dataclass(frozen=True)
class Policy:
    timezone: ZoneInfo
    limits: Limits
    trusted_cas: str | None = None
    require_trusted_signature: bool = False
    store_documents: bool = True


class DocumentRow(TypedDict):
    """A document's columns, as a booking writes them."""

    document_type: str
    status: str
    reason: str
    kind: int
    total_cents: int
    issued_at: datetime
    issuer_document: str
    authorization_protocol: str
    findings: list[dict[str, str]]
    xml: bytes | None


@dataclass(frozen=True)
class _Booking:
    """One invoice to book, decided outside the transaction."""

    merchant_id: str
    access_key: str
    planned: tuple[booking.Posting, ...]
    values: DocumentRow
    outcome: str
    actor: audit.Actor
    traceparent: str | None


@dataclass(frozen=True)
class ProcessCommand:
    merchant_id: str
    merchant_document: str  # "" to use the registry's
    data: bytes


def _document_field(error: Exception) -> InvalidArgument:
    return InvalidArgument([FieldViolation("document", str(error))])


def _refusal(found: Inspection, require_trusted: bool) -> str:
    """Why the document may not be booked; "" when it may."""
    errors = [f for f in found.findings if f.severity.name == "ERROR"]
    if errors:
        codes = ", ".join(sorted({f.code for f in errors}))
        return f"the document fails validation ({len(errors)} findings: {codes})"
    signature = found.signature
    if signature.status in (SignatureStatus.INVALID, SignatureStatus.ABSENT):
        return f"signature {signature.status.name.lower()}: {signature.message}"
    if signature.issuer_matches is False:
        return (
            f"the signing certificate is for CNPJ {signature.certificate_cnpj or 'none'}, "
            "not the document's author (SEFAZ 213)"
        )
    if require_trusted and signature.status is not SignatureStatus.VALID:
        return f"signature not trusted: {signature.message}"
    return ""


class FiscalService:
    def __init__(
        self,
        engine: AsyncEngine,
        policy: Policy,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_batch: int = 64,
    ) -> None:
        self._engine = engine
        self._policy = policy
        self._clock = clock
        self._bookings: GroupCommitter[_Booking, StoredDocument] = GroupCommitter(
            self._flush_bookings, max_batch=max_batch
        )

    def start(self) -> None:
        self._bookings.start()

    async def stop(self) -> None:
        """Books what is queued, then stops."""
        await self._bookings.stop()

    async def inspect(self, data: bytes) -> Inspection:
        """The verdict on one document; InvalidArgument(document) when it is no NF-e."""
        policy = self._policy
        try:
            return await asyncio.to_thread(
                inspection.inspect,
                data,
                now=self._clock(),
                trusted_cas=policy.trusted_cas,
                limits=policy.limits,
            )
        except XmlRejected as error:
            raise _document_field(error) from None

    async def summarize(self, data: bytes) -> summary.Summary:
        try:
            root = await asyncio.to_thread(xml_input.parse, data, self._policy.limits)
            if xml_input.kind(root) == "procEventoNFe":
                raise summary.SummaryError("a cancellation event has no invoice to summarize")
            return summary.summarize(root)
        except (XmlRejected, summary.SummaryError) as error:
            raise _document_field(error) from None

    async def get(self, merchant_id: str, access_key: str) -> StoredDocument:
        # One snapshot for the document and its entries: read apart, a delivery
        # committing in between would show entries posted under a status that
        # still says accepted.
        async with self._engine.connect() as conn:
            snapshot = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with snapshot.begin():
                found = await store.get_document(snapshot, merchant_id, access_key)
        if found is None:
            raise NotFound(f"merchant {merchant_id!r} has no document {access_key}")
        return found

    async def register(self, merchant_id: str, document: str) -> str:
        """Records `document` as the merchant's CNPJ (or CPF), audited; returns it."""
        if not (cnpj_is_valid(document) or cpf_is_valid(document)):
            raise InvalidArgument(
                [FieldViolation("document", f"{document!r} is not a valid CNPJ or CPF")]
            )
        async with self._engine.begin() as conn:
            await store.register(conn, merchant_id, document)
            await audit.append(
                conn,
                [
                    audit.Mutation(
                        merchant_id, f"registry:{document}", [], REGISTERED, audit.current_actor()
                    )
                ],
            )
        return document

    async def process(self, command: ProcessCommand) -> StoredDocument:
        found = await self.inspect(command.data)
        if found.kind == "procEventoNFe":
            return await self._cancel(command, found)
        return await self._book(command, found)

    async def _merchant_document(self, command: ProcessCommand) -> str:
        """The request's CNPJ, which must be the registered one when there is one;
        else the registered one."""
        document = command.merchant_document
        if document and not (cnpj_is_valid(document) or cpf_is_valid(document)):
            raise InvalidArgument(
                [FieldViolation("merchant_document", f"{document!r} is not a valid CNPJ or CPF")]
            )
        async with self._engine.connect() as conn:
            registered = await store.registered_document(conn, command.merchant_id)
        if registered and document and document != registered:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "merchant_document",
                        f"{document!r} is not merchant {command.merchant_id!r}'s registered "
                        f"CNPJ ({registered})",
                    )
                ]
            )
        if not (document or registered):
            raise InvalidArgument(
                [
                    FieldViolation(
                        "merchant_document",
                        f"is required: no CNPJ is registered for merchant {command.merchant_id!r}",
                    )
                ]
            )
        return document or str(registered)

    def _key_of(self, found: Inspection) -> str:
        if parse_key(found.access_key) is None:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "document",
                        f"the access key {found.access_key!r} is not 44 characters of the layout",
                    )
                ]
            )
        return found.access_key

    async def _book(self, command: ProcessCommand, found: Inspection) -> StoredDocument:
        merchant_document = await self._merchant_document(command)
        key = self._key_of(found)
        try:
            read = summary.summarize(found.root)
        except summary.SummaryError as error:
            raise _document_field(error) from None
        role = booking.role_of(read, merchant_document)
        reason = _refusal(found, self._policy.require_trusted_signature)
        if not reason and read.protocol is None:
            reason = "not authorized: a bare NFe has no authorization protocol (send the nfeProc)"
        elif not reason and read.protocol is not None and not read.protocol.authorized:
            reason = f"not authorized: cStat {read.protocol.status} {read.protocol.reason}".strip()
        planned = [] if reason else booking.postings(read, role, self._policy.timezone)
        if planned and (reason := booking.unbookable(planned)):
            planned = []
        kind = booking.kind_for(role, read.direction)
        return await self._bookings.submit(
            _Booking(
                merchant_id=command.merchant_id,
                access_key=key,
                planned=tuple(planned),
                values=DocumentRow(
                    document_type=found.document_type,
                    status=REJECTED if reason else (ACCEPTED if planned else POSTED),
                    reason=reason,
                    kind=int(kind),
                    total_cents=booking.cents(read.totals.get("vNF", Decimal(0))),
                    issued_at=read.issued_at,
                    # As the columns hold them: a rejected document may say anything.
                    issuer_document=read.issuer.document[:20],
                    authorization_protocol=(read.protocol.number if read.protocol else "")[:20],
                    findings=[_finding(f) for f in found.findings],
                    xml=command.data if self._policy.store_documents else None,
                ),
                outcome=REJECTED_OUTCOME if reason else BOOKED,
                actor=audit.current_actor(),
                traceparent=current_traceparent(),
            )
        )

    async def _flush_bookings(
        self, batch: Sequence[_Booking]
    ) -> list[StoredDocument | BaseException]:
        """Books a batch of invoices in one transaction: one commit, one audit
        append (whose lock is then held for the commit alone) for all of them.
        Documents are locked in key order, as the dispatcher locks them, so two
        transactions never wait on each other in a cycle; a second copy of a key
        in the batch sees what the first did."""
        mutations = []
        written: dict[tuple[str, str], StoredDocument] = {}
        failed: dict[tuple[str, str], BaseException] = {}
        async with self._engine.begin() as conn:
            # The transaction's time: what now() wrote as each document's updated_at.
            written_at = (await conn.execute(text("SELECT now()"))).scalar_one()
            for item in sorted(batch, key=lambda b: (b.merchant_id, b.access_key)):
                ref = (item.merchant_id, item.access_key)
                try:
                    # One document's failure is its own, never its batch-mates'.
                    async with conn.begin_nested():
                        booked = await self._book_one(conn, item, ref not in written)
                except Exception as error:
                    log.exception("booking %s failed", item.access_key)
                    failed[ref] = error
                    continue
                if booked:
                    mutations.append(
                        audit.Mutation(
                            item.merchant_id, f"nfe:{item.access_key}", [], item.outcome, item.actor
                        )
                    )
                    written[ref] = _as_written(item, written_at)
            if any(item.planned for item in batch):
                await conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
            found: list[StoredDocument | BaseException] = []
            for item in batch:
                ref = (item.merchant_id, item.access_key)
                document = failed.get(ref) or written.get(ref)
                if document is None:
                    document = await store.get_document(conn, *ref)
                assert document is not None  # written or read
                found.append(document)
            await audit.append(conn, mutations)
        return found

    @staticmethod
    async def _book_one(conn: AsyncConnection, item: _Booking, first_in_batch: bool) -> bool:
        """Writes one document and its postings; False when it was booked (or
        cancelled) already, a replay."""
        merchant, key = item.merchant_id, item.access_key
        fresh = first_in_batch and await store.insert_document(conn, merchant, key, item.values)
        if not fresh:
            current = await store.lock_document(conn, merchant, key)
            if current is None or current.status != REJECTED:
                return False
            await store.save_document(conn, merchant, key, **item.values)
        await store.add_postings(conn, merchant, key, item.planned, item.traceparent)
        return True

    async def _cancel(self, command: ProcessCommand, found: Inspection) -> StoredDocument:
        try:
            event = events.read(found.root)
        except events.EventError as error:
            raise _document_field(error) from None
        key = self._key_of(found)
        reason = _refusal(found, self._policy.require_trusted_signature)
        if not reason and not event.registered:
            status = event.status or "none"
            reason = f"not registered by SEFAZ: cStat {status} {event.status_reason}".strip()
        if reason:
            raise FailedPrecondition(f"the cancellation of {key} cannot be applied: {reason}")
        merchant = command.merchant_id
        async with self._engine.begin() as conn:
            await store.claim_key(conn, merchant, key, _type_of_key(key))
            current = await store.lock_document(conn, merchant, key)
            assert current is not None
            if current.status != CANCELLED:
                if current.issuer_document and event.author != current.issuer_document:
                    raise FailedPrecondition(
                        f"the cancellation is by {event.author}, "
                        f"the invoice's issuer is {current.issuer_document}"
                    )
                protocol = current.authorization_protocol
                if protocol and event.invoice_protocol and protocol != event.invoice_protocol:
                    raise FailedPrecondition(
                        f"the cancellation names authorization {event.invoice_protocol}, "
                        f"the invoice's is {protocol}"
                    )
                booked = [e for e in await store.entries_of(conn, merchant, key) if not e.reversal]
                reversals = [
                    booking.reversal_of(
                        booking.Posting(
                            e.installment,
                            False,
                            e.kind,
                            e.amount_cents,
                            e.value_date,
                            "",
                            e.request_id,
                        ),
                        event,
                        self._policy.timezone,
                    )
                    for e in booked
                ]
                if refused := booking.unbookable(reversals):
                    raise FailedPrecondition(
                        f"the cancellation of {key} cannot be applied: {refused}"
                    )
                await store.save_document(
                    conn,
                    merchant,
                    key,
                    status=CANCELLED,
                    reason=f"cancelled: {event.justification}"[:500],
                    cancellation_xml=command.data if self._policy.store_documents else None,
                )
                await store.add_postings(conn, merchant, key, reversals, current_traceparent())
                if reversals:
                    await conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
                await audit.append(
                    conn,
                    [
                        audit.Mutation(
                            merchant, f"nfe:{key}", [], CANCELLED_OUTCOME, audit.current_actor()
                        )
                    ],
                )
            result = await store.get_document(conn, merchant, key)
        assert result is not None
        return result


def _as_written(item: _Booking, written_at: datetime) -> StoredDocument:
    """What the booking wrote, without reading it back: its entries wait for delivery."""
    values = item.values
    return StoredDocument(
        merchant_id=item.merchant_id,
        access_key=item.access_key,
        document_type=values["document_type"],
        status=values["status"],
        reason=values["reason"],
        kind=booking.Kind(values["kind"]),
        total_cents=values["total_cents"],
        issued_at=values["issued_at"],
        issuer_document=values["issuer_document"],
        authorization_protocol=values["authorization_protocol"],
        findings=values["findings"],
        updated_at=written_at,
        entries=[
            store.StoredEntry(
                installment=p.installment,
                reversal=False,
                kind=p.kind,
                amount_cents=p.amount_cents,
                value_date=p.value_date,
                request_id=p.request_id,
                state=store.PENDING,
                lancamento_id=None,
                parked_reason="",
            )
            for p in item.planned
        ],
    )


def _type_of_key(key: str) -> str:
    parsed = parse_key(key)
    return {"55": inspection.NFE, "65": inspection.NFCE}.get(parsed.model if parsed else "", "")


def _finding(finding: Finding) -> dict[str, str]:
    values = asdict(finding)
    values["severity"] = finding.severity.name
    return values
