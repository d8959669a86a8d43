"""Stopping always ends: a stop that lands at an unlucky moment must not hang a
rolling restart (or a test session) forever.

Python 3.11's `asyncio.wait_for` swallows a cancellation that arrives in the
same loop iteration as its inner awaitable completing (CPython gh-86296); a
loop that relies on cancellation alone then runs on, and `stop` waits for it
forever. These tests make that iteration happen on purpose.
"""

from __future__ import annotations

import asyncio

from services.platform.grpc_server import GrpcServer
from tests.support.stopping import stops_promptly


async def test_stop_ends_when_it_lands_as_the_readiness_probe_completes() -> None:
    started, gate = asyncio.Event(), asyncio.Event()
    probes = 0

    async def probe() -> None:
        nonlocal probes
        probes += 1
        if probes > 1:  # the first runs in start(), before the loop
            started.set()
            await gate.wait()

    server = GrpcServer(
        host="127.0.0.1",
        port=0,
        service_names=[],
        registrars=[],
        readiness_probe=probe,
        probe_interval=0.01,
    )
    await server.start()
    await started.wait()
    # The probe completes and the stop's cancellation arrives in one iteration:
    # no await between them.
    gate.set()
    await stops_promptly(server.stop(0))
