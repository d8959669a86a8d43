"""PostgreSQL connections fit the scale-out (issue 11 §6).

The chart counts what the pools can open at the autoscalers' maximums (plus a rollout's
surge): CloudNativePG gets that as max_connections, and a server the chart does not
manage must allow it or the render fails. The count's premise, that a process opens at
most 2 × DATABASE_POOL_SIZE plus one LISTEN (where it has an outbox: lancamentos, the
dispatcher, fiscal), is measured on the real PostgreSQL here.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import asyncpg
import pytest
from helm_python.errors import HelmError

from mesh.chart import Rendered
from services.platform.database import asyncpg_dsn, create_engine
from services.platform.outbox.notifier import CommitNotifier
from tests.helm.test_workloads import container, env
from tests.support.chart import TOPOLOGIES, render_chart

RESERVED = 10
# Each workload's database, and those that LISTEN for their outbox.
CLIENTS = {
    "lancamentos": "lancamentos",
    "dispatcher": "lancamentos",
    "consolidado": "consolidado",
    "fiscal": "fiscal",
}
LISTENS = {"lancamentos", "dispatcher", "fiscal"}
DATABASES = ("lancamentos", "consolidado", "fiscal")


def _needed(rendered: Rendered) -> dict[str, int]:
    """Independently of the template: from the rendered Deployments and autoscalers."""
    scalers = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"]
        for h in rendered.of_kind("HorizontalPodAutoscaler")
    }
    need = dict.fromkeys(DATABASES, RESERVED + 2)  # + migrate's two
    for deployment in rendered.of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        component = name.removeprefix("caixa-")
        database = CLIENTS[component]
        most = scalers.get(name, deployment["spec"].get("replicas", 0))
        processes = most + math.ceil(most / 4)  # the default rolling update's 25 % surge
        pool = int(env(container(deployment))["DATABASE_POOL_SIZE"])
        need[database] += processes * (2 * pool + (1 if component in LISTENS else 0))
    return need


@pytest.mark.parametrize("topology", ["default", "onprem"])
def test_the_shipped_scale_out_fits_postgres_default_100(topology: str) -> None:
    rendered = render_chart(TOPOLOGIES[topology])
    need = _needed(rendered)
    assert set(need) == set(DATABASES)
    assert all(n <= 100 for n in need.values()), need


def test_cloudnative_pg_gets_max_connections_for_the_scale_out() -> None:
    sets = [
        "consolidado.autoscaling.maxReplicas=20",
        "lancamentos.autoscaling.maxReplicas=12",
        "fiscal.autoscaling.maxReplicas=12",
    ]
    rendered = render_chart(TOPOLOGIES["onprem"], sets)
    need = _needed(rendered)
    assert all(need[database] > 100 for database in DATABASES), need
    for database in DATABASES:
        cluster = rendered.get("Cluster", f"caixa-{database}-pg")
        parameters = cluster["spec"]["postgresql"]["parameters"]
        assert int(parameters["max_connections"]) == need[database], database


@pytest.mark.parametrize("database", ["consolidado", "fiscal"])
def test_a_server_the_chart_does_not_manage_must_allow_it(database: str) -> None:
    scaled = f"{database}.autoscaling.maxReplicas=20"
    limit = f"databaseConnections.serverMaxConnections.{database}"
    need = _needed(render_chart(sets=[scaled, f"{limit}={10_000}"]))[database]
    with pytest.raises(HelmError, match=rf"{database} database's clients may open {need} "):
        render_chart(sets=[scaled])
    render_chart(sets=[scaled, f"{limit}={need}"])
    with pytest.raises(HelmError, match=f"allows {need - 1} "):
        render_chart(sets=[scaled, f"{limit}={need - 1}"])


async def _connections(admin: asyncpg.Connection, database: str) -> int:
    found = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database
    )
    return int(found)


async def test_a_process_opens_at_most_twice_its_pool_plus_one_listen(
    make_database: Callable[[str], str], pg_admin_url: str
) -> None:
    url = make_database("pool")
    database = url.rsplit("/", 1)[1]
    pool = 2
    engine = create_engine(url, pool_size=pool)
    notifier = CommitNotifier(url, "pool_budget")
    admin = await asyncpg.connect(asyncpg_dsn(pg_admin_url))
    try:
        notifier.start()
        held = asyncio.Event()
        seen = 0

        async def hold() -> None:
            async with engine.connect() as connection:
                await connection.exec_driver_sql("SELECT 1")
                await held.wait()

        # Far more callers than the pool: the rest wait for a connection.
        callers = [asyncio.create_task(hold()) for _ in range(4 * pool + 3)]
        for _ in range(100):
            seen = max(seen, await _connections(admin, database))
            if seen >= 2 * pool + 1:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        seen = max(seen, await _connections(admin, database))
        held.set()
        await asyncio.gather(*callers)
        assert seen == 2 * pool + 1
    finally:
        await notifier.stop()
        await engine.dispose()
        await admin.close()
