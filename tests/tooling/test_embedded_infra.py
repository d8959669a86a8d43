"""tooling.devstack.infra: real embedded PostgreSQL and Valkey, reuse of reachable
servers, and the supervisor that `make run` uses."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
import redis

from tooling.devstack.infra import (
    StartupError,
    create_database,
    drop_database,
    ensure_postgres,
    ensure_redis,
)
from tooling.devstack.pgsql import postgres_problem
from tooling.devstack.processes import port_open
from tooling.devstack.supervisor import StopRequested, Supervisor
from tooling.devstack.urls import redact, tcp_endpoint, with_database
from tooling.devstack.valkey import redis_problem

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/postgres"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def _fetch(url: str, query: str) -> object:
    async def run() -> object:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return await conn.fetchval(query)
        finally:
            await conn.close()

    return asyncio.run(run())


def _endpoint(url: str) -> tuple[str, int]:
    endpoint = tcp_endpoint(url, 0)
    assert endpoint is not None
    return endpoint


@pytest.mark.slow
def test_embedded_postgres_and_valkey_start_serve_and_stop(tmp_path: Path) -> None:
    postgres = ensure_postgres(None, tmp_path / "pg")
    valkey = ensure_redis(None, tmp_path / "redis")
    try:
        assert postgres.embedded and valkey.embedded
        assert postgres.url.startswith("postgresql://postgres@127.0.0.1:")
        assert valkey.url.startswith("redis://127.0.0.1:") and valkey.url.endswith("/0")
        assert _fetch(postgres.url, "SELECT 1") == 1
        assert str(_fetch(postgres.url, "SHOW server_version")).startswith("18")
        assert (tmp_path / "pg" / "pgdata" / "PG_VERSION").exists()

        name = f"infra_{uuid.uuid4().hex[:8]}"
        url = create_database(postgres.url, name)
        assert url == with_database(postgres.url, name)
        assert create_database(postgres.url, name) == url  # already there: fine
        assert _fetch(url, "SELECT current_database()") == name
        drop_database(postgres.url, name)
        assert (
            _fetch(postgres.url, f"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == 0
        )

        client = redis.Redis.from_url(valkey.url)
        assert client.ping() is True
        client.set("k", "v")
        assert client.get("k") == b"v"
        # A bounded cache that may evict anything: consolidado's scheme is built for it.
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        assert client.config_get("maxmemory") == {"maxmemory": str(256 * 1024 * 1024)}
        client.close()
    finally:
        postgres.stop()
        valkey.stop()
    assert not port_open(*_endpoint(postgres.url))
    assert not port_open(*_endpoint(valkey.url))
    postgres.stop()  # idempotent


@pytest.mark.slow
def test_embedded_postgres_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    with ensure_postgres(None, tmp_path) as first:
        create_database(first.url, "kept")
    with ensure_postgres(None, tmp_path) as second:
        assert _fetch(with_database(second.url, "kept"), "SELECT current_database()") == "kept"


@pytest.mark.slow
def test_unreachable_urls_fall_back_to_embedded_servers(tmp_path: Path) -> None:
    with ensure_postgres(UNREACHABLE_PG, tmp_path / "pg") as postgres:
        assert postgres.embedded and postgres.url != UNREACHABLE_PG
        assert postgres_problem(postgres.url) is None
    with ensure_redis(UNREACHABLE_REDIS, tmp_path / "redis") as valkey:
        assert valkey.embedded and valkey.url != UNREACHABLE_REDIS
        assert redis_problem(valkey.url) is None


def test_reachable_urls_are_reused(tmp_path: Path) -> None:
    pg_url = os.environ.get("DATABASE_URL", DEFAULT_PG)
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS)
    if postgres_problem(pg_url) or redis_problem(redis_url):
        pytest.skip("no PostgreSQL/Redis running at DATABASE_URL/REDIS_URL")
    postgres = ensure_postgres(pg_url, tmp_path / "pg")
    valkey = ensure_redis(redis_url, tmp_path / "redis")
    assert (postgres.url, valkey.url) == (pg_url, redis_url)
    assert not postgres.embedded and not valkey.embedded
    postgres.stop()
    valkey.stop()
    assert postgres_problem(pg_url) is None and redis_problem(redis_url) is None
    assert not (tmp_path / "pg").exists()


def test_problems_name_the_cause() -> None:
    assert "nothing listens" in (postgres_problem(UNREACHABLE_PG) or "")
    assert postgres_problem("mysql://x@127.0.0.1/db") is not None
    assert redis_problem(UNREACHABLE_REDIS) is not None


def test_urls() -> None:
    admin = "postgresql+asyncpg://app:s3cret@db.example:6543/postgres?sslmode=require"
    assert with_database(admin, "caixa_x") == (
        "postgresql+asyncpg://app:s3cret@db.example:6543/caixa_x?sslmode=require"
    )
    assert redact(admin) == "postgresql+asyncpg://app:***@db.example:6543/postgres?sslmode=require"
    assert redact(DEFAULT_PG) == DEFAULT_PG
    with pytest.raises(ValueError):
        with_database(admin, 'x"; DROP DATABASE postgres; --')


def test_create_database_works_inside_a_running_event_loop(tmp_path: Path) -> None:
    pg_url = os.environ.get("DATABASE_URL", DEFAULT_PG)
    if postgres_problem(pg_url):
        pytest.skip("no PostgreSQL running at DATABASE_URL")
    name = f"infra_loop_{uuid.uuid4().hex[:8]}"

    async def inside_loop() -> str:
        return create_database(pg_url, name)

    try:
        assert asyncio.run(inside_loop()) == with_database(pg_url, name)
    finally:
        drop_database(pg_url, name)


def test_supervisor_reports_a_child_dying_during_startup(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, grace=2.0)
    code = "import sys; print('boom: bad config', file=sys.stderr); sys.exit(3)"
    supervisor.start(
        "dies", [sys.executable, "-c", code], env=dict(os.environ), ready=lambda: False
    )
    with pytest.raises(StartupError, match="boom: bad config"):
        supervisor.wait_ready(timeout=10)
    supervisor.stop()


def test_supervisor_stops_children_and_kills_stubborn_ones(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, grace=1.0)
    polite = supervisor.start(
        "polite", [sys.executable, "-c", "import time; time.sleep(60)"], env=dict(os.environ)
    )
    stubborn_code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    stubborn = supervisor.start(
        "stubborn",
        [sys.executable, "-c", stubborn_code],
        env=dict(os.environ),
        ready=lambda: "up" in (tmp_path / "stubborn.log").read_text(),
    )
    supervisor.wait_ready(timeout=10)
    assert (tmp_path / "stubborn.pid").exists()
    supervisor.request_stop()
    with pytest.raises(StopRequested):
        supervisor.check()
    supervisor.stop()
    assert not polite.alive() and not stubborn.alive()
    assert stubborn.returncode == -9
    assert not (tmp_path / "stubborn.pid").exists()


def test_supervisor_run_fails_with_the_output_tail(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    supervisor.run("ok", [sys.executable, "-c", "print('migrated')"], env={}, timeout=10)
    assert "migrated" in (tmp_path / "ok.log").read_text()
    with pytest.raises(StartupError, match="relation missing"):
        supervisor.run(
            "bad",
            [sys.executable, "-c", "raise SystemExit('relation missing')"],
            env={},
            timeout=10,
        )
