"""Real lancamentos and consolidado servers that verify tokens, on free ports, over
real PostgreSQL and Redis, one pair per test module."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from services.consolidado.app import MIGRATIONS as CONSOLIDADO_MIGRATIONS
from services.consolidado.app import ConsolidadoApp
from services.lancamentos.app import MIGRATIONS as LANCAMENTOS_MIGRATIONS
from services.lancamentos.app import LancamentosApp
from services.platform.migrations import upgrade
from tests.support.auth import Issuer
from tests.support.consolidado import consolidado_settings
from tests.support.lancamentos import lancamentos_settings


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return Issuer.create(tmp_path_factory.mktemp("auth"))


@pytest.fixture(scope="module")
async def lancamentos(
    issuer: Issuer, make_database: Callable[[str], str]
) -> AsyncIterator[LancamentosApp]:
    url = await asyncio.to_thread(make_database, "auth_lancamentos")
    await asyncio.to_thread(upgrade, LANCAMENTOS_MIGRATIONS, url)
    app = LancamentosApp(lancamentos_settings(url, **issuer.settings()), serve=True, dispatch=False)
    await app.start()
    yield app
    await app.stop()


@pytest.fixture(scope="module")
async def consolidado(
    issuer: Issuer, make_database: Callable[[str], str], redis_url: str
) -> AsyncIterator[ConsolidadoApp]:
    url = await asyncio.to_thread(make_database, "auth_consolidado")
    await asyncio.to_thread(upgrade, CONSOLIDADO_MIGRATIONS, url)
    prefix = f"auth-{uuid.uuid4().hex[:6]}"
    app = ConsolidadoApp(consolidado_settings(url, redis_url, prefix, **issuer.settings()))
    await app.start()
    yield app
    await app.stop()
