"""A real fiscal server for the client's and the CLI's tests: `FiscalApp` on a
fresh, migrated database, without its dispatcher (ProcessDocument still books,
its entries stay pending), and the documents it is sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from services.fiscal.app import MIGRATIONS, FiscalApp
from services.platform.migrations import upgrade
from tests.support.cli_fiscal import FiscalFiles
from tests.support.fiscal import fiscal_settings
from tooling.fiscal_documents import Signer


@pytest.fixture(scope="session")
def nfe_signer() -> Signer:
    return Signer.self_signed()


@pytest.fixture(scope="session")
async def fiscal_server(make_database: Callable[[str], str]) -> AsyncIterator[str]:
    """The address of a serving fiscal that checks no token."""
    url = await asyncio.to_thread(make_database, "client_fiscal")
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    app = FiscalApp(fiscal_settings(url), serve=True, dispatch=False)
    await app.start()
    yield app.server.address
    await app.stop()


@pytest.fixture
def fiscal_files(tmp_path_factory: pytest.TempPathFactory, nfe_signer: Signer) -> FiscalFiles:
    return FiscalFiles(tmp_path_factory.mktemp("nfe"), nfe_signer)
