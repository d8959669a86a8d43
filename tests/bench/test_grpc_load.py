"""The write-scaling load driver's own rules, without a server."""

from __future__ import annotations

import pytest
from lancamentos.v1 import lancamentos_pb2 as lpb

from bench import grpc_load


def test_targets_loopback_only() -> None:
    assert grpc_load.loopback("127.0.0.1:50051") == "127.0.0.1:50051"
    assert grpc_load.loopback("localhost:1") == "localhost:1"
    assert grpc_load.loopback("[::1]:1") == "[::1]:1"
    with pytest.raises(SystemExit, match="not a loopback"):
        grpc_load.loopback("10.0.0.1:50051")
    with pytest.raises(SystemExit, match="not a loopback"):
        grpc_load.loopback("example.com:443")


def test_every_request_has_its_own_request_id() -> None:
    requests = [
        lpb.CreateLancamentoRequest.FromString(grpc_load.body("p", i, merchants=5, days=8))
        for i in range(200)
    ]
    assert len({r.request_id for r in requests}) == 200
    assert {r.merchant_id for r in requests} == {f"m{m}" for m in range(5)}
    assert all(r.amount_cents > 0 and r.value_date for r in requests)
