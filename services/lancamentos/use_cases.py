"""The lancamentos use cases, independent of the transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncEngine

from services.domain import rules
from services.domain.errors import AlreadyExists, NotFound, Unstorable
from services.lancamentos import outbox_queue, page_tokens, store
from services.lancamentos.commands import EntryRef, ListQuery, ReverseCommand, SummaryQuery
from services.lancamentos.domain import Lancamento, NewLancamento, reversal_of
from services.lancamentos.idempotent_writes import IdempotentWrites
from services.platform import audit
from services.platform.conflicts import retrying_conflicts
from services.platform.group_commit import GroupCommitter
from services.platform.outbox.notifier import CommitNotifier
from services.platform.trace_context import current_traceparent

FEED_PAGE = 500


@dataclass(frozen=True)
class Page:
    lancamentos: list[Lancamento]
    next_page_token: str


@dataclass(frozen=True)
class _Create:
    entry: NewLancamento
    # The group commit writes in its own task: the request's trace and caller
    # travel along.
    traceparent: str | None
    actor: audit.Actor


@dataclass(frozen=True)
class Summary:
    days: list[store.DaySums]
    undelivered: int
    parked: int


class LancamentosService:
    def __init__(
        self,
        engine: AsyncEngine,
        notifier: CommitNotifier,
        *,
        timezone: str,
        group_commit_max_batch: int,
    ) -> None:
        self._engine = engine
        self._notifier = notifier
        self._timezone = timezone
        self._creates: GroupCommitter[_Create, Lancamento] = GroupCommitter(
            self._flush_creates, max_batch=group_commit_max_batch
        )

    def today(self) -> date:
        return rules.business_today(self._timezone)

    async def start(self) -> None:
        self._creates.start()

    async def stop(self) -> None:
        await self._creates.stop()

    async def create(self, entry: NewLancamento) -> Lancamento:
        traceparent = current_traceparent()
        return await self._creates.submit(
            _Create(entry, traceparent, audit.current_actor(traceparent))
        )

    async def _flush_creates(self, entries: Sequence[_Create]) -> list[Lancamento | BaseException]:
        try:
            return await self._write_creates(entries)
        except Unstorable:
            if len(entries) == 1:
                raise
        # One entry the database refuses fails the whole statement, which then
        # wrote nothing: each entry alone, so only that one fails.
        outcomes: list[Lancamento | BaseException] = []
        for entry in entries:
            try:
                outcomes += await self._write_creates([entry])
            except Unstorable as exc:
                outcomes.append(exc)
        return outcomes

    async def _write_creates(self, entries: Sequence[_Create]) -> list[Lancamento | BaseException]:
        # No transaction: the insert is one statement, committed on its own;
        # the commit below ends the replays' hold, if there were any.
        async def transaction() -> list[Lancamento | BaseException]:
            async with self._engine.connect() as conn:
                written = await IdempotentWrites(conn).write(
                    [e.entry for e in entries],
                    [e.traceparent for e in entries],
                    [e.actor for e in entries],
                )
                await conn.commit()
            return list(written.outcomes)

        return await retrying_conflicts(transaction, "create")

    async def get(self, ref: EntryRef) -> Lancamento:
        async with self._engine.connect() as conn:
            found = await store.get(conn, ref.merchant_id, ref.lancamento_id)
        if found is None:
            raise NotFound(
                f"lancamento {ref.lancamento_id} not found for merchant {ref.merchant_id!r}"
            )
        return found

    async def list(self, query: ListQuery) -> Page:
        where = store.PageFilter(
            merchant_id=query.merchant_id,
            from_date=query.from_date,
            to_date=query.to_date,
            kind=query.kind,
            after=(query.after.value_date, query.after.sequence) if query.after else None,
        )
        async with self._engine.connect() as conn:
            rows = await store.list_page(conn, where, query.page_size + 1)
        page, more = rows[: query.page_size], len(rows) > query.page_size
        token = ""
        if more:
            last = page[-1]
            token = page_tokens.encode(
                page_tokens.PagePosition(last.value_date, last.sequence), query.digest
            )
        return Page(page, token)

    async def reverse(self, command: ReverseCommand) -> Lancamento:
        return await retrying_conflicts(lambda: self._reverse(command), "reverse")

    async def _reverse(self, command: ReverseCommand) -> Lancamento:
        ref = command.ref
        async with self._engine.begin() as conn:
            writes = IdempotentWrites(conn)
            # Lock order, as every writer: the feed lock, then rows. An import that
            # replays this entry holds the feed lock while it locks the entry.
            await store.lock_feed(conn)
            # Concurrent reversals of one entry take turns from here.
            exists = await store.lock_entry(conn, ref.merchant_id, ref.lancamento_id)
            # A replay first: once reversed, the original refuses a new reversal.
            earlier = await writes.replay(
                (ref.merchant_id, command.request_id),
                command.fingerprint,
                command.requested_value_date,
            )
            if earlier is not None:
                return earlier
            original = await store.get(conn, ref.merchant_id, ref.lancamento_id) if exists else None
            if original is None:
                raise NotFound(
                    f"lancamento {ref.lancamento_id} not found for merchant {ref.merchant_id!r}"
                )
            reversal = reversal_of(
                original,
                request_id=command.request_id,
                value_date=command.value_date,
                description=command.description,
                fingerprint=command.fingerprint,
                requested_value_date=command.requested_value_date,
            )
            [outcome] = (await writes.write([reversal])).outcomes
        if isinstance(outcome, AlreadyExists):
            raise outcome
        return outcome

    async def import_chunk(self, entries: Sequence[NewLancamento], first_row: int) -> int:
        """Writes one chunk atomically; returns how many were new. A reused key
        with another payload rejects the whole chunk, naming the row."""
        return await retrying_conflicts(lambda: self._import_chunk(entries, first_row), "import")

    async def _import_chunk(self, entries: Sequence[NewLancamento], first_row: int) -> int:
        async with self._engine.begin() as conn:
            written = await IdempotentWrites(conn).write(entries)
            for offset, (entry, outcome) in enumerate(zip(entries, written.outcomes, strict=True)):
                if isinstance(outcome, AlreadyExists):
                    row = first_row + offset
                    raise AlreadyExists(
                        f"row {row}: request_id {entry.request_id!r} was already used by "
                        f"merchant {entry.merchant_id!r} for a different request; the chunk "
                        f"of rows {first_row}-{first_row + len(entries) - 1} was not written"
                    )
        return written.new

    async def summarize(self, query: SummaryQuery) -> Summary:
        async with self._engine.connect() as conn:
            days = await store.day_sums(conn, query.merchant_id, query.from_date, query.to_date)
            undelivered = await store.undelivered_count(conn, query.merchant_id)
            parked = await outbox_queue.parked_count(conn, query.merchant_id)
        return Summary(days, undelivered, parked)

    async def feed(
        self, after_sequence: int, merchant_id: str | None, *, follow: bool, poll: float = 1.0
    ) -> AsyncIterator[Lancamento]:
        cursor = after_sequence
        while True:
            async with self._engine.connect() as conn:
                page = await store.feed_page(conn, cursor, merchant_id, FEED_PAGE)
            for entry in page:
                yield entry
                cursor = entry.sequence
            if len(page) == FEED_PAGE:
                continue
            if not follow:
                return
            await self._notifier.wait(poll)
            await asyncio.sleep(0)
