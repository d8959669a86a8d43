"""Starting, stopping and waiting on rendered local Envoys from async code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mesh.render.bundle import LocalEnvoy
from tooling.devstack.envoy import start_envoy, stats, write_config
from tooling.devstack.processes import ServerProcess


def _start(envoy: LocalEnvoy, out: Path) -> ServerProcess:
    config = write_config(out / envoy.filename, envoy.config)
    return start_envoy(envoy.name, config, envoy.admin_port, log_path=out / f"{envoy.name}.log")


async def start_all(envoys: Sequence[LocalEnvoy], out: Path) -> dict[str, ServerProcess]:
    """Starts them concurrently, each waited for; if one fails, stops the others."""
    processes = await asyncio.gather(
        *(asyncio.to_thread(_start, envoy, out) for envoy in envoys), return_exceptions=True
    )
    started = {p.name: p for p in processes if isinstance(p, ServerProcess)}
    failures = [p for p in processes if isinstance(p, BaseException)]
    if failures:
        await asyncio.to_thread(stop_all, started)
        raise failures[0]
    return started


def stop_all(processes: dict[str, ServerProcess]) -> None:
    for process in processes.values():
        process.signal_stop()
    for process in processes.values():
        process.stop(grace=5)


class NotHealthy(RuntimeError):
    """An Envoy's health checks did not count the hosts expected in time."""


async def wait_membership(
    admin_port: int,
    expected: dict[str, int],
    within: float,
    check: Callable[[], None] = lambda: None,
) -> None:
    """Until that Envoy's active health checks count `expected` healthy hosts per
    cluster; `check` runs on every poll (it may raise to give up early)."""
    deadline = time.monotonic() + within
    while True:
        check()
        found = await asyncio.to_thread(stats, admin_port, "membership_healthy")
        healthy = {c: found.get(f"cluster.{c}.membership_healthy", 0) for c in expected}
        if healthy == expected:
            return
        if time.monotonic() > deadline:
            raise NotHealthy(f"Envoy :{admin_port} counts healthy hosts {healthy}, not {expected}")
        await asyncio.sleep(0.1)
