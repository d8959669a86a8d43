"""Alembic plumbing shared by every service's migrations.

Each service's `migrations/env.py` only calls `run_migrations(metadata)`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.platform.database import sqlalchemy_url

log = logging.getLogger(__name__)

# Serializes concurrent `migrate` runs (several replicas or hook retries).
_MIGRATION_LOCK_KEY = 0x6361697861  # "caixa"


def alembic_config(script_location: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url))
    return config


def upgrade(script_location: Path, database_url: str, revision: str = "head") -> None:
    """Upgrades the database; call from a thread when an event loop is running."""
    command.upgrade(alembic_config(script_location, database_url), revision)


class DatabaseUnreachable(Exception):
    """The database did not accept a connection within the wait, or refused it for good."""


# SQLSTATEs worth waiting out: connection exceptions (class 08) and a server that is
# starting up or shutting down. Anything else (bad password, no such database) is a
# mistake that waiting cannot fix.
_TRANSIENT_SQLSTATE_CLASSES = ("08",)
_TRANSIENT_SQLSTATES = frozenset({"57P03", "57P01"})


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, OSError):  # refused, reset, timed out, name not resolved (yet)
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(sqlstate, str) and (
        sqlstate.startswith(_TRANSIENT_SQLSTATE_CLASSES) or sqlstate in _TRANSIENT_SQLSTATES
    )


def wait_until_reachable(database_url: str, within_seconds: float) -> None:
    """Until the database accepts a connection and answers.

    A migration Job may start before its database does (CloudNativePG creates the cluster
    in the same release), so `migrate` waits instead of failing the Job at once; an error
    that waiting cannot fix fails at once.
    """
    url = sqlalchemy_url(database_url)
    deadline = time.monotonic() + within_seconds
    delay = 0.5
    while True:
        try:
            asyncio.run(_ping(url, connect_timeout=max(0.5, min(5.0, deadline - time.monotonic()))))
            return
        except (OSError, DBAPIError) as exc:
            if not _transient(exc):
                raise DatabaseUnreachable(f"the database refused the connection: {exc}") from exc
            left = deadline - time.monotonic()
            if left <= 0:
                raise DatabaseUnreachable(
                    f"no connection to the database within {within_seconds:g}s: {exc}"
                ) from exc
            log.info("database not reachable yet; retrying", extra={"error": str(exc)})
            time.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)


async def _ping(url: str, connect_timeout: float) -> None:
    engine = create_async_engine(
        url, poolclass=pool.NullPool, connect_args={"timeout": connect_timeout}
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


def migrate_command(
    service: str, script_location: Path, database_url: str, wait_seconds: float
) -> int:
    """Every service's `migrate`: wait for the database, upgrade; the exit status."""
    try:
        wait_until_reachable(database_url, wait_seconds)
    except DatabaseUnreachable as exc:
        log.error(f"{service} database unreachable; nothing migrated", extra={"error": str(exc)})
        return 1
    upgrade(script_location, database_url)
    log.info(f"{service} database migrated")
    return 0


class SchemaNotReady(Exception):
    """The database has not been migrated to what this build needs (yet)."""


@dataclass(frozen=True)
class SchemaCheck:
    """Readiness: the database is at this build's head, or newer.

    The chart's migration Job runs alongside the rollout: the old pods then see a
    revision they don't know and stay ready (migrations are additive). A revision this
    build knows but that is behind its head, or no revision at all (first install, the
    Job still running), keeps the pod out of the endpoints until the Job is done.
    """

    head: str
    behind: frozenset[str]

    @classmethod
    def of(cls, script_location: Path) -> SchemaCheck:
        config = Config()
        config.set_main_option("script_location", str(script_location))
        scripts = ScriptDirectory.from_config(config)
        head = scripts.get_current_head()
        if head is None:
            raise RuntimeError(f"{script_location} has no migrations")
        behind = frozenset(r.revision for r in scripts.walk_revisions() if r.revision != head)
        return cls(head, behind)

    async def __call__(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            exists = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
            version = (
                await conn.scalar(text("SELECT version_num FROM alembic_version"))
                if exists
                else None
            )
        if version is None:
            raise SchemaNotReady(f"the database has no schema yet; this build needs {self.head}")
        if version in self.behind:
            raise SchemaNotReady(f"the database is at {version}; this build needs {self.head}")


def _run_on(connection: Connection, metadata: MetaData) -> None:
    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
    try:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        connection.commit()


async def _run_online(url: str, metadata: MetaData) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_on, metadata)
    finally:
        await engine.dispose()


def run_migrations(metadata: MetaData) -> None:
    """The body of every service's alembic env.py."""
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not set in the Alembic config")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_online(url, metadata))
