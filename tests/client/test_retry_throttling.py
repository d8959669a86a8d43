"""The client's retries cannot multiply an outage: against a server that answers
every call UNAVAILABLE, a channel's retries stop after about half its throttling
tokens, so N calls cost about N attempts, not 4 N. A real gRPC server on loopback
counts the attempts."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from caixa.client import CaixaError, LancamentosClient
from caixa.client.service_config import RETRY_POLICY, RETRY_THROTTLING

CALLS = 30


class Down:
    """lancamentos' GetLancamento, always UNAVAILABLE; counts the attempts."""

    def __init__(self) -> None:
        self.attempts = 0
        self._lock = threading.Lock()

    def get(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self._lock:
            self.attempts += 1
        context.abort(grpc.StatusCode.UNAVAILABLE, "down")


@pytest.fixture
def down() -> Iterator[tuple[str, Down]]:
    service = Down()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.unary_unary_rpc_method_handler(service.get)
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "lancamentos.v1.LancamentosService", {"GetLancamento": handler}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", service
    finally:
        server.stop(grace=None)


def test_retries_stop_while_the_service_is_down(down: tuple[str, Down]) -> None:
    target, service = down
    with LancamentosClient(target, timeout=5) as client:
        for _ in range(CALLS):
            with pytest.raises(CaixaError) as raised:
                client.get_lancamento("m1", str(uuid.uuid4()))
            assert raised.value.code is grpc.StatusCode.UNAVAILABLE
    retries = service.attempts - CALLS
    print(f"{CALLS} calls, {service.attempts} attempts")
    # The first calls still retried (the policy is on) ...
    assert retries >= RETRY_POLICY["maxAttempts"] - 1, service.attempts
    # ... then the tokens ran out: about maxTokens / 2 retries in all, against
    # (maxAttempts - 1) per call without throttling.
    assert retries <= RETRY_THROTTLING["maxTokens"] // 2 + 1, service.attempts
