"""The public contract through a real gateway Envoy, in front of real services.

The local stack of tests.support.stack: lancamentos (with its outbox dispatcher) and two
consolidado replicas in-process on free loopback ports, over real PostgreSQL and Redis,
and the Envoys `make run` renders (gateway, inbound sidecars, the dispatcher's egress).
The gateway's clusters point at the replicas' inbound sidecars, as in Istio.

Tests share one stack per package and stay apart by using a fresh merchant each.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from tests.support.services import Databases, migrated_databases
from tests.support.stack import LocalStack, local_stack


@pytest.fixture(scope="package")
async def gateway_dbs(make_database: Callable[[str], str]) -> Databases:
    return await migrated_databases(make_database, "gw")


@pytest.fixture(scope="package")
async def gateway(
    gateway_dbs: Databases, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    out = tmp_path_factory.mktemp("gateway")
    async with local_stack(gateway_dbs, redis_url, out, prefix="gw") as stack:
        yield stack


@pytest.fixture
def merchant() -> str:
    """A merchant of this test alone, so tests need not truncate the shared databases."""
    return f"gw-{uuid.uuid4().hex[:12]}"
