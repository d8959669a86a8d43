"""The lancamentos database: immutable entries and their outbox."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    Numeric,
    Sequence,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP, UUID

from services.domain.rules import MAX_MERCHANT_VOLUME_CENTS

metadata = MetaData()

# Values are taken under the feed lock, so sequence order is commit order.
feed_sequence = Sequence("lancamento_feed_seq", metadata=metadata)

# Named so the store can tell its violation from others.
REVERSED_ONCE = "lancamentos_reversed_once"
VOLUME_BOUNDED = "merchant_volumes_bounded"

lancamentos = Table(
    "lancamentos",
    metadata,
    Column("lancamento_id", UUID(as_uuid=True), primary_key=True),
    Column("sequence", BigInteger, feed_sequence, nullable=False, unique=True),
    Column("merchant_id", String(64), nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("value_date", Date, nullable=False),
    Column("description", String(255), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    Column(
        "reverses_lancamento_id",
        UUID(as_uuid=True),
        ForeignKey("lancamentos.lancamento_id"),
        nullable=True,
    ),
    UniqueConstraint("merchant_id", "request_id", name="lancamentos_idempotency_key"),
    CheckConstraint("kind IN (1, 2)", name="lancamentos_kind_valid"),
    CheckConstraint("amount_cents > 0", name="lancamentos_amount_positive"),
    CheckConstraint("currency = 'BRL'", name="lancamentos_currency_brl"),
    Index("lancamentos_by_merchant_date", "merchant_id", "value_date", "sequence"),
    # An entry is reversed at most once, even under concurrent reversals.
    Index(
        REVERSED_ONCE,
        "reverses_lancamento_id",
        unique=True,
        postgresql_where=text("reverses_lancamento_id IS NOT NULL"),
    ),
)

# Each merchant's booked volume, kept by the statement that books (see
# services.domain.rules.MAX_MERCHANT_VOLUME_CENTS). Numeric: the sum must be
# checked before it could wrap, not after.
merchant_volumes = Table(
    "merchant_volumes",
    metadata,
    Column("merchant_id", String(64), primary_key=True),
    Column("booked_cents", Numeric(20, 0), nullable=False),
    CheckConstraint(f"booked_cents <= {MAX_MERCHANT_VOLUME_CENTS}", name=VOLUME_BOUNDED),
)

outbox = Table(
    "outbox",
    metadata,
    Column("outbox_id", BigInteger, Identity(), primary_key=True),
    # No foreign key: written only with its entry, and entries are never deleted.
    Column("lancamento_id", UUID(as_uuid=True), nullable=False),
    # W3C trace context of the request that wrote the entry, for the dispatcher
    # to carry on; NULL when that request was not traced.
    Column("traceparent", Text, nullable=True),
    Column("created_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    # Set when consolidado refused the entry for good; claims skip parked rows.
    Column("parked_at", TIMESTAMP(timezone=True), nullable=True),
    Column("parked_reason", Text, nullable=True),
    Index("outbox_queued", "outbox_id", postgresql_where=text("parked_at IS NULL")),
)
