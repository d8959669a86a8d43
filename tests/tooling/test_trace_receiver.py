"""The local trace receiver, fed by the real OTLP exporter the services use, and
read by `caixa trace` as a user runs it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, StatusCode

from caixa.cli.main import main as caixa
from tooling.devstack.processes import free_port
from tooling.devstack.trace_receiver import TraceReceiver


@pytest.fixture
def receiver() -> Iterator[TraceReceiver]:
    found = TraceReceiver("127.0.0.1", 0, 0, max_traces=3)
    found.start()
    yield found
    found.stop()


def _provider(receiver: TraceReceiver, service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=receiver.otlp_endpoint, insecure=True, timeout=5)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_a_trace_is_kept_with_its_tree_and_the_batches_that_link_to_it(
    receiver: TraceReceiver,
) -> None:
    front, back = _provider(receiver, "front"), _provider(receiver, "back")
    tracer = front.get_tracer("t")
    with (
        tracer.start_as_current_span("request", kind=SpanKind.SERVER) as root,
        tracer.start_as_current_span("child") as child,
    ):
        child.set_status(StatusCode.ERROR, "it broke")
    with (
        back.get_tracer("t").start_as_current_span(
            "batch", links=[Link(root.get_span_context())]
        ) as batch,
        back.get_tracer("t").start_as_current_span("apply"),
    ):
        pass
    trace_id = f"{root.get_span_context().trace_id:032x}"

    status, trace = _get(f"{receiver.query_url}/api/traces/{trace_id}")
    assert status == 200
    by_name = {s["name"]: s for s in trace["spans"]}
    assert set(by_name) == {"request", "child"}
    assert by_name["child"]["parent_span_id"] == by_name["request"]["span_id"]
    assert by_name["request"]["kind"] == "server" and by_name["request"]["service"] == "front"
    assert by_name["child"]["status"] == {"code": "ERROR", "message": "it broke"}
    # The batch and what ran inside it, though they are another trace's.
    assert {s["name"] for s in trace["linked"]} == {"batch", "apply"}
    assert all(
        s["trace_id"] == f"{batch.get_span_context().trace_id:032x}" for s in trace["linked"]
    )

    status, listing = _get(f"{receiver.query_url}/api/traces?limit=5")
    assert status == 200
    [newest, oldest] = listing["traces"]
    assert oldest["trace_id"] == trace_id
    assert oldest == oldest | {"root": "front: request", "spans": 2, "errors": 1}
    assert newest["root"] == "back: batch"


def test_the_oldest_traces_are_forgotten_past_the_limit(receiver: TraceReceiver) -> None:
    tracer = _provider(receiver, "svc").get_tracer("t")
    ids = []
    for index in range(5):
        with tracer.start_as_current_span(f"request-{index}") as span:
            ids.append(f"{span.get_span_context().trace_id:032x}")
    _, listing = _get(f"{receiver.query_url}/api/traces?limit=10")
    assert [t["trace_id"] for t in listing["traces"]] == ids[:1:-1]
    assert _get(f"{receiver.query_url}/api/traces/{ids[0]}")[0] == 404


@pytest.mark.parametrize("limit", ["0", "1001", "x", "-1"])
def test_a_bad_limit_is_a_400(receiver: TraceReceiver, limit: str) -> None:
    status, body = _get(f"{receiver.query_url}/api/traces?limit={limit}")
    assert status == 400 and "limit" in body["error"]


def test_caixa_trace_lists_and_draws(
    receiver: TraceReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    url = receiver.query_url
    assert caixa(["trace", "--url", url]) == 0
    assert "no traces yet" in capsys.readouterr().out
    assert caixa(["trace", "--last", "--url", url]) == 2
    assert "no traces yet" in capsys.readouterr().err

    tracer = _provider(receiver, "lancamentos").get_tracer("t")
    with tracer.start_as_current_span("create") as root, tracer.start_as_current_span("insert"):
        pass
    trace_id = f"{root.get_span_context().trace_id:032x}"
    assert caixa(["trace", "--last", "--url", url]) == 0
    drawn = capsys.readouterr().out.splitlines()
    assert drawn[0].startswith(f"trace {trace_id}")
    [create] = [line for line in drawn if line.endswith("lancamentos: create")]
    [insert] = [line for line in drawn if line.endswith("lancamentos: insert")]
    assert insert.index("lancamentos") == create.index("lancamentos") + 2

    assert caixa(["trace", trace_id.upper(), "--url", url]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(f"trace {trace_id}")


def test_caixa_trace_without_a_receiver_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert caixa(["trace", "--url", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"caixa trace: no trace receiver at {url}") and "make run" in err
    assert caixa(["trace", "--url", "localhost:1"]) == 2
    assert "expected http://host:port" in capsys.readouterr().err
    for bad in ("abc?limit=1", "a b", "0" * 31, "g" * 32):
        assert caixa(["trace", bad, "--url", url]) == 2, bad
        assert "is not a trace id" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        caixa(["trace", "--limit", "0"])
    assert usage.value.code == 2
