"""The audit trail at run time: who did what, recorded in the mutation's own
transaction, and read back page by page. The tables, the append-only triggers
and the hash chain are SQL (see audit_schema); nothing here updates or
deletes a record.
"""

from __future__ import annotations

import contextvars
import getpass
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.platform.guard import current_principal
from services.platform.trace_context import current_traceparent

# The RPC being handled, set by the server for every call (guarded or not).
current_method: contextvars.ContextVar[str] = contextvars.ContextVar("current_method", default="")

# Who a call without authentication is recorded as (a stack run without JWKS).
UNAUTHENTICATED_SUBJECT = "anonymous"

CREATED = "created"
REPLAYED = "replayed"


@dataclass(frozen=True)
class Actor:
    """Who acted, through which RPC (or command), in which trace."""

    subject: str
    rpc: str
    trace_id: str = ""


def current_actor(traceparent: str | None = None) -> Actor:
    """The caller of the RPC being handled; `traceparent` defaults to its own."""
    principal = current_principal.get()
    subject = principal.subject if principal is not None else UNAUTHENTICATED_SUBJECT
    return Actor(subject, current_method.get().lstrip("/"), trace_id_of(traceparent))


def operator(command: str) -> Actor:
    """An operator's command run on a service's host (`caixa-lancamentos parked
    --retry`, `caixa-consolidado rebuild`): recorded as its OS user. In a
    cluster that is the container's user; who ran `kubectl exec` is in the
    Kubernetes audit log."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no passwd entry, as in some containers
        user = f"uid {os.getuid()}"
    return Actor(f"operator:{user}", command)


def trace_id_of(traceparent: str | None = None) -> str:
    """The trace id a W3C traceparent names (the current one by default); "" if none."""
    parent = traceparent if traceparent is not None else current_traceparent()
    parts = (parent or "").split("-")
    return parts[1] if len(parts) == 4 else ""


@dataclass(frozen=True)
class Mutation:
    """One record to append: what was done for one merchant."""

    merchant_id: str
    request_id: str
    entry_ids: Sequence[UUID]
    outcome: str
    actor: Actor


def columns(mutations: Sequence[Mutation]) -> list[list[str]]:
    """The arguments of `audit_append`, one array per field, in its order."""
    return [
        [m.merchant_id for m in mutations],
        [m.actor.subject for m in mutations],
        [m.actor.rpc for m in mutations],
        [m.request_id for m in mutations],
        [" ".join(str(i) for i in m.entry_ids) for m in mutations],
        [m.outcome for m in mutations],
        [m.actor.trace_id for m in mutations],
    ]


_APPEND = text("SELECT audit_append(:m, :s, :r, :q, :e, :o, :t)")


async def append(conn: AsyncConnection, mutations: Sequence[Mutation]) -> None:
    """Appends the records in the connection's transaction."""
    if mutations:
        await conn.execute(_APPEND, dict(zip("msrqeot", columns(mutations), strict=True)))


@dataclass(frozen=True)
class Record:
    merchant_id: str
    position: int
    recorded_at: datetime
    subject: str
    rpc: str
    request_id: str
    entry_ids: list[UUID]
    outcome: str
    trace_id: str
    hash: str


@dataclass(frozen=True)
class Head:
    position: int
    hash: str


async def page(
    conn: AsyncConnection, merchant_id: str, after_position: int, limit: int
) -> tuple[list[Record], Head]:
    """Up to `limit` of the merchant's records after `after_position`, in chain
    order, and its head. The head is read first and the page stops at it: a
    record commits with the head that names it, so the page is never ahead."""
    found = (
        await conn.execute(
            text("SELECT position, hash FROM audit_heads WHERE merchant_id = :merchant"),
            {"merchant": merchant_id},
        )
    ).one_or_none()
    head = Head(int(found[0]), str(found[1])) if found else Head(0, "")
    rows = await conn.execute(
        text(
            "SELECT merchant_id, position, recorded_at, subject, rpc, request_id, entry_ids, "
            "outcome, trace_id, hash FROM audit_records WHERE merchant_id = :merchant "
            "AND position > :after AND position <= :head ORDER BY position LIMIT :limit"
        ),
        {"merchant": merchant_id, "after": after_position, "head": head.position, "limit": limit},
    )
    return [Record(*row) for row in rows], head
