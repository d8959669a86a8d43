"""Tracing's own promises: a batch delivery joins its entries' traces, logs carry
the span they were written in, and a dead collector costs requests nothing."""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
from lancamentos.v1 import lancamentos_pb2_grpc as pb_grpc
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from services.platform.logging import JsonFormatter
from services.platform.settings import ServiceSettings
from services.platform.trace_context import context_of, current_traceparent
from services.platform.tracing import Tracing
from tests.support.lancamentos import create_request
from tests.support.services import Mesh


def _tracing(exporter: InMemorySpanExporter, *, sampled: bool = True) -> Tracing:
    provider = TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider)


def _request(tracing: Tracing, name: str) -> tuple[str, int]:
    """A finished request span: its traceparent, as the outbox stores it, and trace id."""
    with tracing.tracer.start_as_current_span(name) as span:
        traceparent = current_traceparent()
    assert traceparent is not None
    return traceparent, span.get_span_context().trace_id


def _delivery(exporter: InMemorySpanExporter) -> ReadableSpan:
    [span] = [s for s in exporter.get_finished_spans() if s.name == "outbox deliver"]
    return span


def test_a_delivery_of_one_trace_is_a_child_of_its_request() -> None:
    exporter = InMemorySpanExporter()
    tracing = _tracing(exporter)
    traceparent, trace_id = _request(tracing, "create")
    with tracing.consumer_span("outbox deliver", [traceparent, traceparent]):
        pass
    delivery = _delivery(exporter)
    assert delivery.context.trace_id == trace_id
    assert delivery.parent is not None and f"{delivery.parent.span_id:016x}" in traceparent
    assert list(delivery.links) == []
    assert delivery.attributes == {"caixa.entries": 2}


def test_a_batch_joins_the_first_sampled_trace_and_links_the_others() -> None:
    exporter = InMemorySpanExporter()
    tracing = _tracing(exporter)
    unsampled = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00"
    first, first_trace = _request(tracing, "create one")
    second, second_trace = _request(tracing, "create two")
    with tracing.consumer_span("outbox deliver", [None, unsampled, first, second, "junk"]):
        pass
    delivery = _delivery(exporter)
    assert delivery.context.trace_id == first_trace
    linked = {link.context.trace_id for link in delivery.links}
    assert linked == {second_trace, int(unsampled.split("-")[1], 16)}


def test_a_batch_of_untraced_entries_starts_its_own_trace() -> None:
    exporter = InMemorySpanExporter()
    tracing = _tracing(exporter)
    with tracing.consumer_span("outbox deliver", [None, None]):
        pass
    delivery = _delivery(exporter)
    assert delivery.parent is None and list(delivery.links) == []


def test_stored_traceparents_that_name_nothing_are_ignored() -> None:
    for junk in (None, "", "junk", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"):
        assert context_of(junk) is None


def test_logs_carry_the_span_they_were_written_in() -> None:
    tracing = _tracing(InMemorySpanExporter())
    formatter = JsonFormatter()

    def line() -> dict[str, str]:
        record = logging.LogRecord("caixa", logging.INFO, __file__, 1, "hello", None, None)
        parsed: dict[str, str] = json.loads(formatter.format(record))
        return parsed

    assert "trace_id" not in line()
    with tracing.tracer.start_as_current_span("request") as span:
        inside = line()
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"


def test_the_collector_endpoint_needs_a_scheme() -> None:
    with pytest.raises(ValueError, match="needs a scheme"):
        ServiceSettings.model_validate({"otel_exporter_otlp_endpoint": "collector:4317"})
    with pytest.raises(ValueError, match="less than or equal to 1"):
        ServiceSettings.model_validate({"otel_traces_sampler_arg": 2})


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that takes connections and never answers: a collector that hangs,
    worse for a client than one that is down."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


async def test_a_hanging_collector_neither_fails_nor_holds_requests(
    mesh: Mesh, black_hole: int
) -> None:
    await mesh.start_consolidado(0)
    app = await mesh.add_lancamentos(
        serve=True,
        dispatch=True,
        otel_exporter_otlp_endpoint=f"http://127.0.0.1:{black_hole}",
        otel_traces_sampler_arg=1.0,
    )
    assert app.server is not None and app.tracing.enabled
    merchant = f"otel-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    async with grpc.aio.insecure_channel(app.server.address) as channel:
        stub = pb_grpc.LancamentosServiceStub(channel)
        for _ in range(30):
            await stub.CreateLancamento(create_request(merchant_id=merchant), timeout=5)
    # Each export to the black hole waits 2 s; 30 creates with that on their
    # path would take a minute.
    assert time.monotonic() - started < 15
    await mesh.wait_delivered()
    stopping = time.monotonic()
    mesh.lancamentos.remove(app)
    await app.stop()
    assert time.monotonic() - stopping < 15  # the last export gives up in time
