"""The ledger's idempotent-write protocol, in one place. Create, import and
reverse all write through it:

1. insert the entries whose (merchant_id, request_id) is new;
2. find the entries the other keys already name;
3. hold those replays until they are on the standbys, as a first answer is;
4. accept a replay only with its original's payload (fingerprint);
5. turn the table's constraint violations and data errors into domain errors;
6. audit each entry written or replayed, in the same transaction.

Bound to one connection; the caller owns the transaction boundary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from services.domain.errors import AlreadyExists, FailedPrecondition, FieldViolation, Unstorable
from services.domain.rules import MAX_MERCHANT_VOLUME_CENTS
from services.lancamentos import store
from services.lancamentos.domain import Lancamento, NewLancamento, ensure_same_request
from services.lancamentos.tables import REVERSED_ONCE, VOLUME_BOUNDED
from services.platform import audit
from services.platform.audit import Actor
from services.platform.refusals import unstorable
from services.platform.trace_context import current_traceparent

Outcome = Lancamento | AlreadyExists


@dataclass(frozen=True)
class Written:
    """One outcome per entry, in order: the recorded entry (new, or the original
    of a replay), or `AlreadyExists` for a key reused with another payload."""

    outcomes: list[Outcome]
    new: int  # how many entries this write inserted


class IdempotentWrites:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def write(
        self,
        entries: Sequence[NewLancamento],
        traceparents: Sequence[str | None] | None = None,
        actors: Sequence[Actor] | None = None,
    ) -> Written:
        """Writes `entries`; a key repeated within them resolves against its first
        occurrence. Each outbox row keeps the trace of the request that wrote its
        entry, and each audit record its caller: `traceparents` and `actors`,
        one per entry, or else the caller's own."""
        if traceparents is None:
            traceparents = [current_traceparent()] * len(entries)
        if actors is None:
            actors = [audit.current_actor(t) for t in traceparents]
        try:
            inserted = await store.insert_entries(self._conn, entries, traceparents, actors)
        except asyncpg.UniqueViolationError as exc:
            # The idempotency key never gets here (ON CONFLICT absorbs it); the
            # reversed-once index is the backstop behind the reversal's row lock.
            if exc.constraint_name == REVERSED_ONCE:
                raise _reversed_twice(entries) from exc
            raise
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
            raise _unstorable(exc) from exc
        missing = [key_of(e) for e in entries if key_of(e) not in inserted]
        existing = await self._replays(missing)
        outcomes: list[Outcome] = []
        replays: list[audit.Mutation] = []
        first: set[store.Key] = set()  # the keys whose insert is already audited, as created
        for entry, actor in zip(entries, actors, strict=True):
            key = key_of(entry)
            found = inserted.get(key) or existing[key]
            try:
                outcomes.append(
                    ensure_same_request(found, entry.fingerprint, entry.requested_value_date)
                )
            except AlreadyExists as exc:
                outcomes.append(exc)  # refused: nothing done, nothing audited
                continue
            if key in inserted and key not in first:
                first.add(key)
            else:
                replays.append(_replayed(found, actor))
        await audit.append(self._conn, replays)
        return Written(outcomes, new=len(inserted))

    async def replay(
        self, key: store.Key, fingerprint: str, requested_value_date: date | None
    ) -> Lancamento | None:
        """The entry `key` already names, held like a replay, or None if the key is
        new. Raises `AlreadyExists` if it was recorded with another payload."""
        earlier = (await self._replays([key])).get(key)
        if earlier is None:
            return None
        replayed = ensure_same_request(earlier, fingerprint, requested_value_date)
        await audit.append(self._conn, [_replayed(replayed, audit.current_actor())])
        return replayed

    async def _replays(self, keys: Sequence[store.Key]) -> dict[store.Key, Lancamento]:
        existing = await store.find_by_keys(self._conn, keys)
        if existing:
            await store.hold_until_replicated(self._conn, list(existing.values()))
        return existing


def _replayed(entry: Lancamento, actor: audit.Actor) -> audit.Mutation:
    ids = [entry.lancamento_id]
    if entry.reverses_lancamento_id is not None:
        ids.append(entry.reverses_lancamento_id)
    return audit.Mutation(entry.merchant_id, entry.request_id, ids, audit.REPLAYED, actor)


def key_of(entry: NewLancamento) -> store.Key:
    return (entry.merchant_id, entry.request_id)


def _reversed_twice(entries: Sequence[NewLancamento]) -> FailedPrecondition:
    reversed_ids = sorted(
        str(e.reverses_lancamento_id) for e in entries if e.reverses_lancamento_id
    )
    return FailedPrecondition(
        f"lancamento {', '.join(reversed_ids)} was already reversed; an entry is "
        "reversed at most once"
    )


# The constraints that guard one field, for a violation that names it.
_FIELD_OF_CONSTRAINT = {
    "lancamentos_kind_valid": "kind",
    "lancamentos_amount_positive": "amount_cents",
    "lancamentos_currency_brl": "currency",
}


def _unstorable(exc: asyncpg.PostgresError) -> Unstorable:
    constraint = getattr(exc, "constraint_name", None) or ""
    if constraint == VOLUME_BOUNDED:
        reason = (
            "would bring this merchant's booked volume past "
            f"{MAX_MERCHANT_VOLUME_CENTS} centavos, beyond which its sums could overflow a "
            "64-bit integer; book it under another merchant_id"
        )
        return Unstorable([FieldViolation("amount_cents", reason)], reason)
    return unstorable(exc, _FIELD_OF_CONSTRAINT.get(constraint, "lancamento"), "this entry")
