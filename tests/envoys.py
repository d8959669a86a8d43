"""Starting and stopping a set of rendered local Envoys from async tests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mesh.render.bundle import LocalEnvoy
from tooling.devstack.envoy import start_envoy, stats, write_config
from tooling.devstack.processes import ServerProcess


def _start(envoy: LocalEnvoy, out: Path) -> ServerProcess:
    config = write_config(out / envoy.filename, envoy.config)
    return start_envoy(envoy.name, config, envoy.admin_port, log_path=out / f"{envoy.name}.log")


async def start_all(envoys: list[LocalEnvoy], out: Path) -> dict[str, ServerProcess]:
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


async def wait_membership(admin_port: int, expected: dict[str, int], within: float) -> None:
    """Until that Envoy's active health checks count `expected` healthy hosts per cluster."""
    deadline = time.monotonic() + within
    while True:
        found = await asyncio.to_thread(stats, admin_port, "membership_healthy")
        healthy = {c: found.get(f"cluster.{c}.membership_healthy", 0) for c in expected}
        if healthy == expected:
            return
        assert time.monotonic() < deadline, f"healthy hosts {healthy}, expected {expected}"
        await asyncio.sleep(0.1)
