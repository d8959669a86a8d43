"""Small helpers for the PostgreSQL and Redis URLs the devstack hands around."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def redact(url: str) -> str:
    """The URL with its password, if any, replaced by `***` (for logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


def plain_postgres_url(url: str) -> str:
    """`postgresql+asyncpg://…` (SQLAlchemy style) → `postgresql://…` (libpq style)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {redact(url)}")
    return urlunsplit(parts._replace(scheme="postgresql"))


def check_database_name(name: str) -> str:
    if not _DATABASE_NAME.match(name):
        raise ValueError(f"invalid database name {name!r}: use letters, digits and _")
    return name


def with_database(url: str, name: str) -> str:
    """The same server, user and options as `url`, on database `name`."""
    parts: SplitResult = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{check_database_name(name)}"))


def tcp_endpoint(url: str, default_port: int) -> tuple[str, int] | None:
    """(host, port) of a URL that names a TCP host; None for Unix sockets."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host or host.startswith("/") or "host=" in parts.query:
        return None
    return host, parts.port or default_port
