"""Fault tests: the local stack of tests.support.stack, real Envoys included, with the
dispatcher on its egress sidecar as in `make run`.

Each test starts its own stack (`fault_stack(extra_sets)`), so a test can render the
policy with its own `--set` overrides (a tiny connection pool, a low rate limit) and can
break services without disturbing another test. Databases are shared by the package and
truncated per stack.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from tests.support.services import Databases, migrated_databases
from tests.support.stack import LocalStack, StackFactory, local_stack


@pytest.fixture(scope="package")
async def fault_dbs(make_database: Callable[[str], str]) -> Databases:
    return await migrated_databases(make_database, "ft")


@pytest.fixture
def fault_stack(fault_dbs: Databases, redis_url: str, tmp_path: Path) -> StackFactory:
    """`async with fault_stack([...extra --set...]) as stack:` a fresh running mesh."""

    @contextlib.asynccontextmanager
    async def run(extra_sets: Sequence[str] = ()) -> AsyncIterator[LocalStack]:
        async with local_stack(
            fault_dbs, redis_url, tmp_path, extra_sets, prefix="ft", empty=True
        ) as stack:
            yield stack

    return run


@pytest.fixture
def merchant() -> str:
    """A merchant of this test alone."""
    return f"ft-{uuid.uuid4().hex[:12]}"
