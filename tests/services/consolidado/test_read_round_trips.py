"""A balance read asks PostgreSQL only its own queries: the version, and on a
miss the inputs. Through SQLAlchemy's statement layer each query came wrapped
in BEGIN and ROLLBACK, three round trips instead of one, on the path every
read takes (issue 13's profiles)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from consolidado.v1 import consolidado_pb2 as pb
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado.app import ConsolidadoApp
from tests.support.consolidado import batch, entry

if TYPE_CHECKING:
    from consolidado.v1.consolidado_pb2_grpc import (
        ConsolidadoIngestServiceAsyncStub as IngestStub,
    )
    from consolidado.v1.consolidado_pb2_grpc import (
        ConsolidadoServiceAsyncStub as BalancesStub,
    )


@pytest.fixture
def statements(consolidado_app: ConsolidadoApp) -> Iterator[list[str]]:
    """Every statement the app's pool sends by the simple-query path (BEGIN,
    ROLLBACK, COMMIT), from connections checked out while it is in use, but
    not for the readiness probe, which runs on its own schedule."""
    sent: list[str] = []

    def log(record: Any) -> None:
        sent.append(record.query.strip().rstrip(";").upper())

    def on_checkout(dbapi_connection: Any, *_: Any) -> None:
        task = asyncio.current_task()
        if task is not None and task.get_name() == "readiness-probe":
            return
        dbapi_connection.driver_connection.add_query_logger(log)

    def on_checkin(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.driver_connection.remove_query_logger(log)  # a no-op if not added

    pool = consolidado_app.engine.sync_engine.pool
    event.listen(pool, "checkout", on_checkout)
    event.listen(pool, "checkin", on_checkin)
    try:
        yield sent
    finally:
        event.remove(pool, "checkout", on_checkout)
        event.remove(pool, "checkin", on_checkin)


async def test_a_read_opens_no_transaction(
    balances_stub: BalancesStub,
    ingest_stub: IngestStub,
    engine: AsyncEngine,
    statements: list[str],
) -> None:
    await ingest_stub.ApplyLancamentos(batch(entry(100)))
    statements.clear()
    day = pb.GetDailyBalanceRequest(merchant_id="m1", date="2024-03-01")
    miss = await balances_stub.GetDailyBalance(day)
    hit = await balances_stub.GetDailyBalance(day)
    assert hit == miss and miss.closing_balance_cents == 100
    assert not {"BEGIN", "ROLLBACK", "COMMIT"} & set(statements), statements
