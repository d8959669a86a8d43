"""consolidado under test: its settings, a channel to a running app, and builders of
the entries lancamentos delivers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
from consolidado.v1 import consolidado_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp
from lancamentos.v1 import lancamentos_pb2 as lpb
from redis.asyncio import Redis

from services.consolidado.app import ConsolidadoApp
from services.consolidado.settings import ConsolidadoSettings

DEFAULT_CREATED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def entry(
    amount_cents: int = 100,
    *,
    merchant_id: str = "m1",
    kind: int = lpb.KIND_CREDIT,
    value_date: str = "2024-03-01",
    created_at: datetime = DEFAULT_CREATED,
    lancamento_id: str | None = None,
) -> lpb.Lancamento:
    return lpb.Lancamento(
        lancamento_id=lancamento_id or str(uuid.uuid4()),
        merchant_id=merchant_id,
        kind=kind,  # type: ignore[arg-type]
        amount_cents=amount_cents,
        currency="BRL",
        value_date=value_date,
        created_at=timestamp(created_at),
    )


def debit(amount_cents: int, **fields: object) -> lpb.Lancamento:
    return entry(amount_cents, kind=lpb.KIND_DEBIT, **fields)  # type: ignore[arg-type]


def batch(*entries: lpb.Lancamento) -> pb.ApplyLancamentosRequest:
    return pb.ApplyLancamentosRequest(lancamentos=list(entries))


def consolidado_settings(
    database_url: str, redis_url: str, key_prefix: str, **overrides: object
) -> ConsolidadoSettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "redis_key_prefix": key_prefix,
        "grpc_port": 0,
        "lancamentos_target": "127.0.0.1:1",
        "shutdown_grace_seconds": 1.0,
        **overrides,
    }
    return ConsolidadoSettings.model_validate(values)


async def open_channel(app: ConsolidadoApp) -> grpc.aio.Channel:
    assert app.server is not None
    return grpc.aio.insecure_channel(app.server.address)


async def forget_cached(client: Redis, prefix: str) -> None:
    """Deletes every key under `prefix`: what an eviction of everything does."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
