"""Synchronous administration of a PostgreSQL server: probe, create and drop databases.

asyncpg is the only PostgreSQL driver the project has; each call runs its own
short event loop (in a helper thread when the caller is already inside one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import asyncpg

from tooling.devstack.processes import port_open
from tooling.devstack.urls import (
    check_database_name,
    plain_postgres_url,
    redact,
    tcp_endpoint,
    with_database,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs the coroutine `make()` to completion from synchronous code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="devstack-pg") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def _connect(url: str, seconds: float) -> Any:
    return await asyncpg.connect(plain_postgres_url(url), timeout=seconds)


async def _select_one(url: str, seconds: float) -> None:
    conn = await _connect(url, seconds)
    try:
        value = await conn.fetchval("SELECT 1", timeout=seconds)
    finally:
        await conn.close(timeout=seconds)
    if value != 1:
        raise RuntimeError(f"SELECT 1 returned {value!r}")


def postgres_ready(url: str, timeout: float = 1.0) -> bool:
    return postgres_problem(url, timeout) is None


def postgres_problem(url: str, timeout: float = 3.0) -> str | None:
    """Why `url` is not a usable PostgreSQL server, or None when `SELECT 1` works."""
    try:
        endpoint = tcp_endpoint(plain_postgres_url(url), 5432)
    except ValueError as error:
        return str(error)
    if endpoint is not None and not port_open(*endpoint, timeout=min(timeout, 1.0)):
        return f"nothing listens on {endpoint[0]}:{endpoint[1]}"
    try:
        run_sync(lambda: _select_one(url, timeout))
    except Exception as error:  # any failure means "not usable"; the reason is logged
        return f"{type(error).__name__}: {error}"
    return None


async def _create(admin_url: str, name: str) -> None:
    conn = await _connect(admin_url, 10.0)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Another process may create it meanwhile.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop(admin_url: str, name: str) -> None:
    conn = await _connect(admin_url, 10.0)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def create_database(admin_url: str, name: str) -> str:
    """Creates database `name` unless it exists; returns its URL (same server and user)."""
    check_database_name(name)
    run_sync(lambda: _create(admin_url, name))
    url = with_database(admin_url, name)
    log.info("database %s ready at %s", name, redact(url))
    return url


def drop_database(admin_url: str, name: str) -> None:
    """Drops database `name` if it exists, disconnecting its sessions."""
    check_database_name(name)
    run_sync(lambda: _drop(admin_url, name))
    log.info("database %s dropped", name)
