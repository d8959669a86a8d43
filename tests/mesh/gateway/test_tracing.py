"""One REST create is one trace, end to end: the gateway, lancamentos' sidecar and
server, the outbox delivery that carries the entry on, the dispatcher's egress
sidecar, consolidado's sidecar and its ingest. Read back from the local trace
receiver the stack exports to, as `caixa trace` reads it."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from caixa.cli.main import main as caixa
from tests.mesh.gateway.test_rest import lancamentos, new_entry
from tests.support.lancamentos import create_request
from tests.support.rest import http_request, rest
from tests.support.stack import LocalStack

pytestmark = pytest.mark.slow

CREATE = "/lancamentos.v1.LancamentosService/CreateLancamento"
INGEST = "/consolidado.v1.ConsolidadoIngestService/ApplyLancamentos"


def _spans_by(trace: dict[str, Any], service: str, name: str | None = None) -> list[Any]:
    """In the trace, or in a batch delivery of another trace that links to it
    (when an earlier test's entry was delivered in the same batch)."""
    return [
        s
        for s in [*trace["spans"], *trace["linked"]]
        if s["service"].startswith(service) and (name is None or s["name"] == name)
    ]


def _complete(trace: dict[str, Any] | None) -> bool:
    if trace is None:
        return False
    wanted = [
        ("gateway", None),
        ("inbound-lancamentos", None),
        ("lancamentos", CREATE),
        ("lancamentos", "outbox deliver"),
        ("egress-dispatcher", None),
        ("inbound-consolidado", None),
        ("consolidado", INGEST),
    ]
    return all(_spans_by(trace, service, name) for service, name in wanted)


async def _trace_of(gateway: LocalStack, trace_id: str, within: float = 15.0) -> dict[str, Any]:
    assert gateway.traces is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not _complete(trace := gateway.traces.store.trace(trace_id)):
        assert loop.time() < deadline, f"trace {trace_id} incomplete: {trace}"
        await asyncio.sleep(0.2)
    assert trace is not None
    return trace


SECRET = "Bearer not-to-be-kept-anywhere"


async def test_one_rest_create_is_one_trace_through_every_hop(
    gateway: LocalStack, merchant: str
) -> None:
    # This stack checks no token, so this one passes through to every hop.
    reply = await asyncio.to_thread(
        http_request,
        gateway.rest_url,
        "POST",
        lancamentos(merchant),
        new_entry(),
        headers={"authorization": SECRET},
    )
    assert reply.status == 200, reply.body
    trace_id = reply.headers["x-trace-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id), trace_id

    trace = await _trace_of(gateway, trace_id)
    spans = trace["spans"]
    ids = {s["span_id"] for s in spans}
    # One tree: a single root (the gateway's), every other span's parent in it.
    roots = [s for s in spans if s["parent_span_id"] not in ids]
    assert [r["service"] for r in roots] == ["gateway"], roots
    spans += trace["linked"]
    [create] = _spans_by(trace, "lancamentos", CREATE)
    assert create["kind"] == "server"
    assert create["attributes"]["rpc.grpc.status_code"] == 0
    # Delivery is at least once: a batch that failed (a deadline on a loaded
    # machine) is sent again, each attempt a span of its own.
    delivers = _spans_by(trace, "lancamentos", "outbox deliver")
    assert delivers
    ingests = _spans_by(trace, "consolidado", INGEST)
    assert all(i["kind"] == "server" for i in ingests)
    chain = {s["span_id"]: s for s in spans}

    def ancestors(span: dict[str, Any]) -> list[str]:
        names = []
        while span["parent_span_id"] in chain:
            span = chain[span["parent_span_id"]]
            names.append(f"{span['service']}: {span['name']}")
        return names

    # One ingest succeeded, inside a delivery.
    applied = [i for i in ingests if i["attributes"].get("rpc.grpc.status_code") == 0]
    assert any("lancamentos: outbox deliver" in ancestors(i) for i in applied), ingests
    for deliver in delivers:
        # Delivery is not part of the request, and never precedes it.
        assert deliver["start_unix_nano"] >= create["start_unix_nano"]
        if deliver in trace["linked"]:  # batched with another trace's entry: a link
            assert trace_id in {link["trace_id"] for link in deliver["links"]}
        else:
            assert f"lancamentos: {CREATE}" in ancestors(deliver)
    # No span keeps the caller's credentials, at any hop.
    assert "not-to-be-kept-anywhere" not in str(spans)


async def test_caixa_trace_draws_it(
    gateway: LocalStack, merchant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gateway.traces is not None
    reply = await rest(gateway, "POST", lancamentos(merchant), new_entry())
    trace_id = reply.headers["x-trace-id"]
    await _trace_of(gateway, trace_id)
    url = gateway.traces.query_url

    status = await asyncio.to_thread(caixa, ["trace", trace_id, "--url", url])
    drawn = capsys.readouterr().out
    assert status == 0
    assert drawn.startswith(f"trace {trace_id}")
    lines = drawn.splitlines()
    [create_line] = [line for line in lines if CREATE in line]
    [ingest_line] = [line for line in lines if f"consolidado: {INGEST}" in line]
    indent = len(ingest_line) - len(ingest_line.lstrip(" 0123456789."))
    assert indent > len(create_line) - len(create_line.lstrip(" 0123456789."))

    status = await asyncio.to_thread(caixa, ["trace", "--url", url, "--limit", "50"])
    assert status == 0
    assert trace_id in capsys.readouterr().out

    unknown = uuid.uuid4().hex
    status = await asyncio.to_thread(caixa, ["trace", unknown, "--url", url])
    assert status == 2
    assert f"no trace {unknown}" in capsys.readouterr().err


async def test_health_checks_are_never_traced(gateway: LocalStack, merchant: str) -> None:
    """The front Envoys check every replica every second through its sidecar,
    and kubelet (or anyone) may call a service's health directly: none of it is
    traced. A create sent the same way, straight to the service, is."""
    assert gateway.traces is not None
    store = gateway.traces.store
    async with grpc.aio.insecure_channel(gateway.plan.lancamentos.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(3):
            await health.Check(health_pb2.HealthCheckRequest())
        stub = lpb_grpc.LancamentosServiceStub(channel)
        await stub.CreateLancamento(create_request(merchant_id=merchant))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while not [t for t in store.summaries(1000) if t["root"] == f"lancamentos: {CREATE}"]:
        assert loop.time() < deadline, "the direct create was not traced"
        await asyncio.sleep(0.2)
    spans = [s for t in store.summaries(1000) for s in (store.trace(t["trace_id"]) or {})["spans"]]
    assert not [s for s in spans if "grpc.health" in s["name"] + str(s["attributes"])]
