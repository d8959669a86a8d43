"""`migrate` waits for its database instead of failing at once.

In Kubernetes the migration Job may start before its database accepts connections
(CloudNativePG creates the cluster in the same release). The real console scripts run
against a port where nothing listens yet; a forwarder to the real PostgreSQL opens
there a moment later.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from services.consolidado.app import MIGRATIONS as CONSOLIDADO_MIGRATIONS
from services.lancamentos.app import MIGRATIONS as LANCAMENTOS_MIGRATIONS
from services.platform import database
from services.platform.migrations import SchemaCheck
from tests.support.tcp_proxy import TcpProxy
from tooling.devstack.processes import free_port

SCRIPTS = Path(sys.executable).parent


async def _migrate(script: str, database_url: str, wait_seconds: float) -> tuple[int, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "MIGRATE_WAIT_SECONDS": str(wait_seconds)}
    process = await asyncio.create_subprocess_exec(
        str(SCRIPTS / script),
        "migrate",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.mark.parametrize(
    ("script", "migrations"),
    [
        ("caixa-lancamentos", LANCAMENTOS_MIGRATIONS),
        ("caixa-consolidado", CONSOLIDADO_MIGRATIONS),
    ],
)
async def test_migrate_waits_for_a_database_that_comes_up_later(
    make_database: Callable[[str], str], script: str, migrations: Path
) -> None:
    url = make_url(await asyncio.to_thread(make_database, "migrate_wait"))
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.port = free_port()
    late_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)

    migrating = asyncio.create_task(_migrate(script, late_url, wait_seconds=30))
    await asyncio.sleep(2)  # refused meanwhile
    assert not migrating.done()
    await proxy.start()
    try:
        code, output = await migrating
    finally:
        await proxy.cut()
    assert code == 0, output
    assert "not reachable yet" in output

    engine = database.create_engine(url.render_as_string(hide_password=False), pool_size=1)
    try:
        await SchemaCheck.of(migrations)(engine)  # at head
    finally:
        await engine.dispose()


async def test_a_missing_database_fails_at_once(pg_admin_url: str) -> None:
    """Waiting cannot fix a wrong name or password: no 300 s of retries for a typo."""
    missing = make_url(pg_admin_url).set(database="no_such_database_here")
    started = time.monotonic()
    code, output = await _migrate(
        "caixa-consolidado", missing.render_as_string(hide_password=False), wait_seconds=60
    )
    assert code == 1
    assert time.monotonic() - started < 20
    assert "refused the connection" in output
    assert "not reachable yet" not in output
    assert "Traceback" not in output


async def test_migrate_gives_up_with_a_clear_error_and_no_traceback() -> None:
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    code, output = await _migrate("caixa-lancamentos", nobody, wait_seconds=1)
    assert code == 1
    assert "database unreachable; nothing migrated" in output
    assert "Traceback" not in output
