"""The services of one test, run in-process on the test's event loop over real
PostgreSQL and Redis, and ways to break them; oracles over their databases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.consolidado.app import MIGRATIONS as CONSOLIDADO_MIGRATIONS
from services.consolidado.app import ConsolidadoApp
from services.consolidado.settings import ConsolidadoSettings
from services.fiscal.app import MIGRATIONS as FISCAL_MIGRATIONS
from services.fiscal.app import FiscalApp
from services.fiscal.settings import FiscalSettings
from services.lancamentos.app import MIGRATIONS as LANCAMENTOS_MIGRATIONS
from services.lancamentos.app import LancamentosApp
from services.lancamentos.settings import LancamentosSettings
from services.platform.database import sqlalchemy_url
from services.platform.migrations import upgrade


class Databases(NamedTuple):
    lancamentos: str
    consolidado: str
    fiscal: str


async def migrated_databases(make_database: Callable[[str], str], prefix: str) -> Databases:
    """A fresh, migrated database for each service."""
    found = []
    for service, migrations in (
        ("lancamentos", LANCAMENTOS_MIGRATIONS),
        ("consolidado", CONSOLIDADO_MIGRATIONS),
        ("fiscal", FISCAL_MIGRATIONS),
    ):
        url = await asyncio.to_thread(make_database, f"{prefix}_{service}")
        await asyncio.to_thread(upgrade, migrations, url)
        found.append(url)
    return Databases(*found)


class Gate:
    """Test fault hook for consolidado's ingest: open passes, closed hangs."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    async def __call__(self) -> None:
        await self._open.wait()


@dataclass
class Mesh:
    """The processes of one test, and ways to break them."""

    lancamentos_db: str
    consolidado_db: str
    redis_url: str
    key_prefix: str
    consolidado_ports: list[int]
    lancamentos_port: int
    gate: Gate = field(default_factory=Gate)
    # OTEL_* settings of every service (a stack with a trace receiver sets them).
    tracing: dict[str, str] = field(default_factory=dict)
    consolidados: list[ConsolidadoApp | None] = field(default_factory=list)
    lancamentos: list[LancamentosApp] = field(default_factory=list)
    fiscal_db: str = ""
    fiscal_ports: list[int] = field(default_factory=list)
    fiscals: list[FiscalApp] = field(default_factory=list)

    @property
    def consolidado_target(self) -> str:
        return "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in self.consolidado_ports)

    def consolidado_settings(self, port: int) -> ConsolidadoSettings:
        return ConsolidadoSettings.model_validate(
            {
                "database_url": self.consolidado_db,
                "redis_url": self.redis_url,
                "redis_key_prefix": self.key_prefix,
                "grpc_port": port,
                "shutdown_grace_seconds": 0.5,
                "lancamentos_target": self.lancamentos_address,
                **self._tracing_settings,
            }
        )

    def lancamentos_settings(self, **overrides: object) -> LancamentosSettings:
        values: dict[str, object] = {
            "database_url": self.lancamentos_db,
            "grpc_port": 0,
            "consolidado_target": self.consolidado_target,
            "shutdown_grace_seconds": 0.5,
            "dispatch_poll_seconds": 0.2,
            "dispatch_timeout_seconds": 2.0,
            "dispatch_backoff_base_seconds": 0.02,
            "dispatch_backoff_max_seconds": 0.3,
            "dispatch_drain_seconds": 0.0,
            **self._tracing_settings,
            **overrides,
        }
        return LancamentosSettings.model_validate(values)

    @property
    def _tracing_settings(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.tracing.items()}

    @property
    def lancamentos_address(self) -> str:
        """Where the first serving lancamentos listens (known before it starts)."""
        return f"127.0.0.1:{self.lancamentos_port}"

    async def start_consolidado(self, index: int) -> ConsolidadoApp:
        app = ConsolidadoApp(
            self.consolidado_settings(self.consolidado_ports[index]), before_apply=self.gate
        )
        await app.start()
        self.consolidados[index] = app
        return app

    async def stop_consolidado(self, index: int) -> None:
        app = self.consolidados[index]
        if app is not None:
            self.consolidados[index] = None
            await app.stop()

    async def add_lancamentos(
        self, *, serve: bool, dispatch: bool, **overrides: object
    ) -> LancamentosApp:
        if serve and not any(app.server for app in self.lancamentos):
            overrides.setdefault("grpc_port", self.lancamentos_port)
        settings = self.lancamentos_settings(**overrides)
        app = LancamentosApp(settings, serve=serve, dispatch=dispatch)
        await app.start()
        self.lancamentos.append(app)
        return app

    async def start_fiscal(self, index: int, lancamentos_target: str) -> FiscalApp:
        """A fiscal replica on its port, its dispatcher delivering to `lancamentos_target`."""
        settings = FiscalSettings.model_validate(
            {
                "database_url": self.fiscal_db,
                "grpc_port": self.fiscal_ports[index],
                "lancamentos_target": lancamentos_target,
                "shutdown_grace_seconds": 0.5,
                "dispatch_poll_seconds": 0.2,
                "dispatch_backoff_base_seconds": 0.02,
                "dispatch_backoff_max_seconds": 0.3,
                "dispatch_drain_seconds": 0.0,
                **self._tracing_settings,
            }
        )
        app = FiscalApp(settings, serve=True, dispatch=True)
        await app.start()
        self.fiscals.append(app)
        return app

    async def undelivered(self) -> int:
        return await scalar(self.lancamentos[0], "SELECT count(*) FROM outbox")

    async def wait_delivered(self, within_seconds: float = 30.0) -> None:
        deadline = time.monotonic() + within_seconds
        while (remaining := await self.undelivered()) > 0:
            assert time.monotonic() < deadline, f"{remaining} entries still undelivered"
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        for fiscal in reversed(self.fiscals):
            await fiscal.stop()
        self.fiscals.clear()
        for app in reversed(self.lancamentos):
            await app.stop()
        for index in range(len(self.consolidados)):
            await self.stop_consolidado(index)


async def scalar(app: LancamentosApp | ConsolidadoApp, sql: str) -> int:
    async with app.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def truncate(mesh: Mesh) -> None:
    """Empties both databases and the mesh's cache keys (a truncate behind the
    services' back invalidates nothing by itself)."""
    client = Redis.from_url(mesh.redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{mesh.key_prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
    databases = [
        (mesh.lancamentos_db, "outbox, lancamentos, merchant_volumes"),
        (mesh.consolidado_db, "applied_lancamentos, daily_totals, balance_versions"),
    ]
    if mesh.fiscal_db:
        databases.append((mesh.fiscal_db, "postings, documents, merchant_documents"))
    for url, tables in databases:
        engine = create_async_engine(sqlalchemy_url(url))
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables}"))
        await engine.dispose()


Totals = dict[tuple[str, str], tuple[int, int, int]]


async def lancamentos_totals(engine: AsyncEngine) -> Totals:
    """What the ledger says, computed directly from its entries: the oracle."""
    sql = """
        SELECT merchant_id, value_date::text,
               coalesce(sum(amount_cents) FILTER (WHERE kind = 1), 0),
               coalesce(sum(amount_cents) FILTER (WHERE kind = 2), 0), count(*)
        FROM lancamentos GROUP BY 1, 2"""
    async with engine.connect() as conn:
        rows = (await conn.execute(text(sql))).all()
    return {(r[0], r[1]): (int(r[2]), int(r[3]), int(r[4])) for r in rows}


async def consolidado_totals(engine: AsyncEngine) -> Totals:
    sql = """
        SELECT merchant_id, value_date::text, credits_cents, debits_cents, lancamentos_count
        FROM daily_totals WHERE lancamentos_count > 0"""
    async with engine.connect() as conn:
        rows = (await conn.execute(text(sql))).all()
    return {(r[0], r[1]): (int(r[2]), int(r[3]), int(r[4])) for r in rows}


async def assert_sum_invariant(mesh: Mesh, consolidado_engine: AsyncEngine) -> None:
    """Every acknowledged entry counted exactly once, per merchant and day."""
    expected = await lancamentos_totals(mesh.lancamentos[0].engine)
    actual = await consolidado_totals(consolidado_engine)
    assert actual == expected
    entries = await scalar(mesh.lancamentos[0], "SELECT count(*) FROM lancamentos")
    async with consolidado_engine.connect() as conn:
        applied = (await conn.execute(text("SELECT count(*) FROM applied_lancamentos"))).scalar()
    assert applied == entries
