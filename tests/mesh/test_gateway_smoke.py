"""The gateway in a real Envoy, with no service behind it: what Envoy itself answers.

Proves the filter order (routes, and so rate limits, are chosen after transcoding), that
REST clients get JSON for Envoy's own replies and gRPC clients get plain grpc-status, and
that the internal ingest service is not routed. Round trips through the services come with
the local mesh tests.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from mesh.render import render_local_mesh
from mesh.values import load_policy
from tests.support.paths import OPENAPI, VALUES, VALUES_LOCAL

from .test_envoy_validate import envoy_binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, descriptor: Path) -> Iterator[str]:
    port, admin = free_port(), free_port()
    policy = load_policy(
        [VALUES, VALUES_LOCAL],
        [
            f"mesh.localTopology.gateway.port={port}",
            f"mesh.localTopology.gateway.adminPort={admin}",
            # One request per second: the second of two quick calls is limited.
            "mesh.upstreams.consolidado.routeClasses.reads.rateLimit.tokensPerSecond=1",
            "mesh.upstreams.consolidado.routeClasses.reads.rateLimit.burst=1",
        ],
    )
    out = tmp_path_factory.mktemp("gateway")
    rendered = render_local_mesh(policy, descriptor, out, OPENAPI)
    config = next(p for p in rendered if p.stem == "gateway")
    log = (out / "envoy.log").open("wb")
    process = subprocess.Popen(
        [envoy_binary(), "-c", str(config), "--concurrency", "1", "--disable-hot-restart"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (out / "envoy.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "gateway never became ready"
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def rest(gateway: str, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://{gateway}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        assert error.headers["content-type"] == "application/json"
        return error.code, json.loads(error.read())


def grpc_code(gateway: str, method: str) -> grpc.StatusCode:
    with grpc.insecure_channel(gateway) as channel:
        # Raw bytes both ways: the empty message is valid for any request type.
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as raised:
            call(b"", timeout=5)
    code: grpc.StatusCode = raised.value.code()
    return code


pytestmark = pytest.mark.slow


def test_unknown_rest_path_is_404_json(gateway: str) -> None:
    status, body = rest(gateway, "/v1/nothing")
    assert (status, body["code"]) == (404, 5)


def test_unknown_query_parameter_is_400_json(gateway: str) -> None:
    status, body = rest(gateway, "/v1/merchants/m1/lancamentos?colour=red")
    assert (status, body["code"]) == (400, 3)
    assert "colour" in body["message"]


def test_ingest_service_is_not_routed(gateway: str) -> None:
    method = "/consolidado.v1.ConsolidadoIngestService/ApplyLancamentos"
    assert grpc_code(gateway, method) == grpc.StatusCode.UNIMPLEMENTED


def test_service_down_is_503_json(gateway: str) -> None:
    status, body = rest(gateway, "/v1/merchants/m1/lancamentos/l1")
    assert (status, body["code"]) == (503, 14)


def test_rate_limit_rest_then_grpc(gateway: str) -> None:
    time.sleep(1.1)  # a full bucket
    path = "/v1/merchants/m1/daily-balances/2024-01-02"
    assert rest(gateway, path)[0] == 503  # allowed through, nothing behind it
    status, body = rest(gateway, path)
    assert (status, body["code"], body["message"]) == (429, 8, "local_rate_limited")
    time.sleep(1.1)
    method = "/consolidado.v1.ConsolidadoService/GetDailyBalance"
    assert grpc_code(gateway, method) == grpc.StatusCode.UNAVAILABLE
    assert grpc_code(gateway, method) == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_openapi_document_is_served(gateway: str) -> None:
    with urllib.request.urlopen(f"http://{gateway}/openapi.json", timeout=5) as response:
        assert response.status == 200
        assert response.headers["content-type"] == "application/json"
        served = response.read()
    assert served == OPENAPI.read_bytes()
    assert json.loads(served)["openapi"].startswith("3.")
