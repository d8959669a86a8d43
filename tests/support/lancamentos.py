"""lancamentos under test: its settings (quick to shut down, dispatching nowhere),
and builders of its requests."""

from __future__ import annotations

import uuid

from lancamentos.v1 import lancamentos_pb2 as pb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.lancamentos.settings import LancamentosSettings


def lancamentos_settings(database_url: str, **overrides: object) -> LancamentosSettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "grpc_port": 0,
        "consolidado_target": "127.0.0.1:1",
        "shutdown_grace_seconds": 1.0,
        "dispatch_drain_seconds": 0.0,
        **overrides,
    }
    return LancamentosSettings.model_validate(values)


def create_request(**overrides: object) -> pb.CreateLancamentoRequest:
    values: dict[str, object] = {
        "merchant_id": "m1",
        "kind": pb.KIND_CREDIT,
        "amount_cents": 1050,
        "value_date": "2026-03-10",
        "description": "venda balcão",
        "request_id": str(uuid.uuid4()),
    }
    values.update(overrides)
    return pb.CreateLancamentoRequest(**values)  # type: ignore[arg-type]


def batches(
    entries: list[pb.CreateLancamentoRequest], size: int = 64
) -> list[pb.ImportLancamentosRequest]:
    """Import messages of `size` rows; sizes deliberately don't divide chunks."""
    return [
        pb.ImportLancamentosRequest(lancamentos=entries[i : i + size])
        for i in range(0, len(entries), size)
    ]


async def count_rows(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
