"""The use cases' commands and queries: plain types, free of protobuf. The
servicer parses requests into them (`requests`); a create is a domain
`NewLancamento` itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from services.lancamentos.domain import Kind
from services.lancamentos.page_tokens import PagePosition


@dataclass(frozen=True)
class EntryRef:
    merchant_id: str
    lancamento_id: UUID


@dataclass(frozen=True)
class ReverseCommand:
    ref: EntryRef
    request_id: str
    value_date: date
    description: str
    fingerprint: str
    requested_value_date: date | None  # None: the request let it default to today


@dataclass(frozen=True)
class ListQuery:
    merchant_id: str
    from_date: date | None
    to_date: date | None
    kind: Kind | None
    page_size: int
    after: PagePosition | None
    digest: str


@dataclass(frozen=True)
class SummaryQuery:
    merchant_id: str
    from_date: date
    to_date: date
