"""Transport: turns lancamentos.v1 requests into the plain commands and queries of
`commands`, naming every bad field."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from lancamentos.v1 import lancamentos_pb2 as pb

from services.domain import rules
from services.domain.errors import ViolationCollector
from services.lancamentos import page_tokens
from services.lancamentos.commands import EntryRef, ListQuery, ReverseCommand, SummaryQuery
from services.lancamentos.domain import Kind, NewLancamento, fingerprint

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def _kind(errors: ViolationCollector, field: str, value: int) -> Kind | None:
    if value in (Kind.CREDIT, Kind.DEBIT):
        return Kind(value)
    errors.add(field, "must be KIND_CREDIT or KIND_DEBIT")
    return None


def new_lancamento(
    request: pb.CreateLancamentoRequest, today: date, errors: ViolationCollector
) -> NewLancamento | None:
    """Validates a create; records violations in `errors` and returns None if any."""
    start = len(errors.violations)
    rules.check_merchant_id(errors, "merchant_id", request.merchant_id)
    kind = _kind(errors, "kind", request.kind)
    rules.check_amount(errors, "amount_cents", request.amount_cents)
    currency = rules.normalize_currency(errors, "currency", request.currency)
    value_date = rules.parse_optional_date(errors, "value_date", request.value_date)
    rules.check_description(errors, "description", request.description)
    rules.check_request_id(errors, "request_id", request.request_id)
    if len(errors.violations) > start or kind is None:
        return None
    digest = fingerprint(
        "create",
        {
            "kind": int(kind),
            "amount_cents": request.amount_cents,
            "currency": currency,
            "description": request.description,
        },
    )
    return NewLancamento(
        merchant_id=request.merchant_id,
        kind=kind,
        amount_cents=request.amount_cents,
        currency=currency,
        value_date=value_date or today,
        description=request.description,
        request_id=request.request_id,
        fingerprint=digest,
        requested_value_date=value_date,
    )


def create_command(request: pb.CreateLancamentoRequest, today: date) -> NewLancamento:
    errors = ViolationCollector()
    command = new_lancamento(request, today, errors)
    errors.raise_if_any()
    assert command is not None
    return command


def entry_ref(merchant_id: str, lancamento_id: str) -> EntryRef:
    errors = ViolationCollector()
    rules.check_merchant_id(errors, "merchant_id", merchant_id)
    rules.check_uuid(errors, "lancamento_id", lancamento_id)
    errors.raise_if_any()
    return EntryRef(merchant_id, UUID(lancamento_id))


def reverse_command(request: pb.ReverseLancamentoRequest, today: date) -> ReverseCommand:
    errors = ViolationCollector()
    rules.check_merchant_id(errors, "merchant_id", request.merchant_id)
    rules.check_uuid(errors, "lancamento_id", request.lancamento_id)
    rules.check_request_id(errors, "request_id", request.request_id)
    value_date = rules.parse_optional_date(errors, "value_date", request.value_date)
    rules.check_description(errors, "description", request.description)
    errors.raise_if_any()
    digest = fingerprint(
        "reverse",
        {
            "lancamento_id": request.lancamento_id,
            "description": request.description,
        },
    )
    return ReverseCommand(
        ref=EntryRef(request.merchant_id, UUID(request.lancamento_id)),
        request_id=request.request_id,
        value_date=value_date or today,
        description=request.description,
        fingerprint=digest,
        requested_value_date=value_date,
    )


def list_query(request: pb.ListLancamentosRequest) -> ListQuery:
    errors = ViolationCollector()
    rules.check_merchant_id(errors, "merchant_id", request.merchant_id)
    from_date = rules.parse_optional_date(errors, "from_date", request.from_date)
    to_date = rules.parse_optional_date(errors, "to_date", request.to_date)
    if from_date and to_date and to_date < from_date:
        errors.add("from_date", f"must not be after to_date ({from_date} > {to_date})")
    kind = None if request.kind == pb.KIND_UNSPECIFIED else _kind(errors, "kind", request.kind)
    if not 0 <= request.page_size <= MAX_PAGE_SIZE:
        errors.add("page_size", f"must be between 0 and {MAX_PAGE_SIZE}, got {request.page_size}")
    digest = page_tokens.query_digest(
        request.merchant_id, request.from_date, request.to_date, request.kind
    )
    after = page_tokens.decode(errors, "page_token", request.page_token, digest)
    errors.raise_if_any()
    return ListQuery(
        merchant_id=request.merchant_id,
        from_date=from_date,
        to_date=to_date,
        kind=kind,
        page_size=request.page_size or DEFAULT_PAGE_SIZE,
        after=after,
        digest=digest,
    )


def summary_query(request: pb.SummarizeLancamentosRequest) -> SummaryQuery:
    errors = ViolationCollector()
    rules.check_merchant_id(errors, "merchant_id", request.merchant_id)
    from_date = rules.parse_date(errors, "from_date", request.from_date)
    to_date = rules.parse_date(errors, "to_date", request.to_date)
    rules.check_range(errors, "from_date", from_date, to_date)
    errors.raise_if_any()
    assert from_date is not None and to_date is not None
    return SummaryQuery(request.merchant_id, from_date, to_date)


def stream_start(request: pb.StreamLancamentosRequest) -> tuple[int, str | None]:
    errors = ViolationCollector()
    if request.after_sequence < 0:
        errors.add("after_sequence", f"must not be negative, got {request.after_sequence}")
    if request.merchant_id:
        rules.check_merchant_id(errors, "merchant_id", request.merchant_id)
    errors.raise_if_any()
    return request.after_sequence, request.merchant_id or None
