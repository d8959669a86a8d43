"""A steady open-loop stream of unary calls, bounded in time, with its outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc


@dataclass
class Outcomes:
    """Latency of every successful call, and the status of every failed one."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.latencies) + len(self.failures)

    def p99(self) -> float:
        ordered = sorted(self.latencies)
        assert ordered, "no successful call"
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def _one(call: Callable[[], Awaitable[object]], outcomes: Outcomes) -> None:
    started = time.perf_counter()
    try:
        await call()
    except grpc.aio.AioRpcError as error:
        outcomes.failures.append(f"{error.code().name}: {error.details()}")
    else:
        outcomes.latencies.append(time.perf_counter() - started)


async def steady(
    call: Callable[[], Awaitable[object]], rate: float, stop: asyncio.Event, max_seconds: float
) -> Outcomes:
    """Starts `call` `rate` times a second (not waiting for answers) until `stop` is set
    or `max_seconds` pass, then waits for the calls in flight."""
    outcomes = Outcomes()
    tasks: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    sent = 0
    while not stop.is_set() and time.monotonic() - started < max_seconds:
        task = asyncio.create_task(_one(call, outcomes))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
        delay = started + sent / rate - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    if tasks:
        await asyncio.wait(tasks, timeout=15)
    return outcomes


def rest_status(port: int, path: str, token: str | None = None) -> int:
    """The HTTP status of one GET through the gateway on loopback."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()
