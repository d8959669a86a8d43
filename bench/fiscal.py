"""fiscal's throughput: documents per second for validate, summarize and process,
through gRPC streams and through REST (both via the gateway), and one document's
latency alone; each rate also as a ratio to the reference "API Fiscal XML" design.

The documents are made here (tooling.fiscal_documents): nfelib's sample re-signed
under a self-signed certificate, each with its own number and access key, so
processing books each once. Successes are counted by grpc-status from fiscal's
own metrics; a stream's messages are counted as the client receives them, and
every stream must end OK. Processing is measured end to end: from the first
request to the last of its entries acknowledged by lancamentos.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
from fiscal.v1 import fiscal_pb2 as pb
from google.api.httpbody_pb2 import HttpBody

from bench import metrics, wrk
from bench.scenarios import error_pct
from bench.stack import Stack, sql_scalar
from bench.stats import percentile, summarize
from tooling.fiscal_documents import ISSUER, Signer, invoice

SERVICE = "/fiscal.v1.FiscalService/"
# The reference design's figures, per minute (issue 12).
REFERENCE_PER_MINUTE = {"validate": 1300, "summarize": 4000, "process": 690}
TARGET_PER_SECOND = {"validate": 800, "summarize": 1500, "process": 400}
STREAM_METHODS = {"validate": "ValidateDocuments", "summarize": "SummarizeDocuments"}
UNARY_METHODS = {
    "validate": "ValidateDocument",
    "summarize": "SummarizeDocument",
    "process": "ProcessDocument",
}
CALL_TIMEOUT = 30.0


def documents(count: int, *, first: int = 1, signer: Signer | None = None) -> list[bytes]:
    """`count` authorized invoices, numbered from `first` (each its own key)."""
    signer = signer or Signer.self_signed()
    return [invoice(signer, number=first + i) for i in range(count)]


def _body(data: bytes) -> HttpBody:
    return HttpBody(content_type="application/xml", data=data)


def _ratios(action: str, per_second: float) -> dict[str, Any]:
    return {
        "docs_per_s": round(per_second, 1),
        "target_docs_per_s": TARGET_PER_SECOND[action],
        "reference_docs_per_min": REFERENCE_PER_MINUTE[action],
        "ratio_to_reference": round(per_second * 60 / REFERENCE_PER_MINUTE[action], 1),
    }


async def _streams(
    target: str, action: str, docs: list[bytes], *, seconds: float, streams: int, window: int
) -> tuple[int, int, float]:
    """(answers received, answers that were not a verdict, seconds) over `streams`
    bidi streams, each with at most `window` documents unanswered."""
    method = SERVICE + STREAM_METHODS[action]
    request_type = (
        pb.ValidateDocumentsRequest if action == "validate" else pb.SummarizeDocumentsRequest
    )
    answered = failed = 0
    started = time.perf_counter()
    deadline = started + seconds
    async with grpc.aio.insecure_channel(target) as channel:
        call_of = channel.stream_stream(
            method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=(
                pb.ValidationReport.FromString
                if action == "validate"
                else pb.SummarizeDocumentsResponse.FromString
            ),
        )

        async def one(offset: int) -> None:
            nonlocal answered, failed
            credit = asyncio.Semaphore(window)

            async def requests() -> AsyncIterator[Any]:
                n = offset
                while time.perf_counter() < deadline:
                    await credit.acquire()
                    yield request_type(document=_body(docs[n % len(docs)]))
                    n += streams

            async for answer in call_of(requests(), timeout=seconds + CALL_TIMEOUT):
                credit.release()
                answered += 1
                if action == "validate" and not answer.valid:
                    failed += 1
                if action == "summarize" and answer.WhichOneof("result") != "summary":
                    failed += 1

        await asyncio.gather(*(one(i) for i in range(streams)))
    return answered, failed, time.perf_counter() - started


def stream_rate(
    stack: Stack, action: str, docs: list[bytes], *, seconds: float, streams: int
) -> dict[str, Any]:
    """Documents per second through `streams` concurrent gRPC streams via the gateway."""
    target = f"127.0.0.1:{stack.gateway_port}"
    method = SERVICE + STREAM_METHODS[action]
    before = metrics.handled_by_code(_metrics(stack), method)
    answered, failed, took = asyncio.run(
        _streams(target, action, docs, seconds=seconds, streams=streams, window=8)
    )
    codes = metrics.delta(metrics.handled_by_code(_metrics(stack), method), before)
    return {
        "scenario": f"fiscal {action}, gRPC streams via the gateway ({streams} streams)",
        **_ratios(action, answered / took),
        "documents": answered,
        "not_a_verdict": failed,
        "stream_grpc_codes": codes,
        "error_pct": round(100 * failed / answered, 3) if answered else 100.0,
    }


def rest_rate(
    stack: Stack,
    action: str,
    docs: list[bytes],
    workdir: Path,
    *,
    seconds: float,
    connections: int,
    query: str = "",
) -> dict[str, Any]:
    """Documents per second through the REST gateway (wrk, raw XML bodies)."""
    folder = workdir / f"fiscal-{action}"
    folder.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(docs):
        (folder / f"{i}.xml").write_bytes(data)
    method = SERVICE + UNARY_METHODS[action]
    before = metrics.handled_by_code(_metrics(stack), method)
    result = wrk.run(
        f"http://127.0.0.1:{stack.gateway_port}",
        "fiscal.lua",
        seconds=seconds,
        connections=connections,
        env={
            "FISCAL_PATH": f"/v1/fiscal/documents:{action}{query}",
            "FISCAL_DOCS": str(folder),
            "FISCAL_COUNT": str(len(docs)),
        },
    )
    codes = metrics.delta(metrics.handled_by_code(_metrics(stack), method), before)
    return {
        "scenario": f"fiscal {action}, REST via the gateway (wrk, {connections} connections)",
        **_ratios(action, codes.get("OK", 0) / result.seconds if result.seconds else 0.0),
        "requests": result.requests,
        "grpc_codes": codes,
        "error_pct": error_pct(codes),
        "non_2xx": result.non_2xx,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
    }


def single_latency(
    stack: Stack, action: str, docs: list[bytes], *, requests: int, merchant: str = ""
) -> dict[str, Any]:
    """One document at a time through the gateway (gRPC): its latency alone."""
    method = SERVICE + UNARY_METHODS[action]

    async def go() -> list[float]:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.gateway_port}") as channel:
            call = channel.unary_unary(
                method,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=None,
            )
            latencies = []
            for i in range(requests):
                data = docs[i % len(docs)]
                request: Any = (
                    pb.ProcessDocumentRequest(
                        merchant_id=merchant, merchant_document=ISSUER, document=_body(data)
                    )
                    if action == "process"
                    else pb.ValidateDocumentRequest(document=_body(data))
                )
                sent = time.perf_counter()
                await call(request, timeout=CALL_TIMEOUT)
                latencies.append((time.perf_counter() - sent) * 1000)
            return latencies

    before = metrics.handled_by_code(_metrics(stack), method)
    latencies = asyncio.run(go())
    codes = metrics.delta(metrics.handled_by_code(_metrics(stack), method), before)
    ordered = sorted(latencies)
    summary = summarize(latencies)
    return {
        "scenario": f"fiscal {action}, one document at a time (gRPC via the gateway)",
        "requests": len(latencies),
        "grpc_codes": codes,
        "error_pct": error_pct(codes),
        "p50_ms": summary.p50_ms,
        "p95_ms": round(percentile(ordered, 0.95), 3),
        "p99_ms": summary.p99_ms,
        "target_p95_ms": 100,
    }


def process_end_to_end(stack: Stack, docs: list[bytes], *, in_flight: int) -> dict[str, Any]:
    """ProcessDocument of every document (distinct keys) via the gateway, `in_flight`
    at a time; the rate is documents over the time until lancamentos acknowledged
    the last entry."""
    merchant = f"bench-fiscal-{uuid.uuid4().hex[:6]}"
    method = SERVICE + "ProcessDocument"
    before = metrics.handled_by_code(_metrics(stack), method)
    latencies: list[float] = []

    async def go() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.gateway_port}") as channel:
            call = channel.unary_unary(
                method,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=None,
            )
            pending = iter(docs)

            async def worker() -> None:
                for data in pending:
                    request = pb.ProcessDocumentRequest(
                        merchant_id=merchant, merchant_document=ISSUER, document=_body(data)
                    )
                    sent = time.perf_counter()
                    await call(request, timeout=CALL_TIMEOUT)
                    latencies.append((time.perf_counter() - sent) * 1000)

            await asyncio.gather(*(worker() for _ in range(in_flight)))

    started = time.perf_counter()
    asyncio.run(go())
    answered = time.perf_counter() - started
    expected = len(docs)
    deadline = time.monotonic() + 300
    delivered = 0
    while time.monotonic() < deadline:
        delivered = int(
            str(
                sql_scalar(
                    stack.fiscal_db,
                    "SELECT count(*) FROM postings WHERE delivered_at IS NOT NULL "
                    f"AND merchant_id = '{merchant}'",
                )
            )
        )
        if delivered >= expected:
            break
        time.sleep(0.05)
    took = time.perf_counter() - started
    codes = metrics.delta(metrics.handled_by_code(_metrics(stack), method), before)
    booked = int(
        str(
            sql_scalar(
                stack.lancamentos_db,
                f"SELECT count(*) FROM lancamentos WHERE merchant_id = '{merchant}'",
            )
        )
    )
    summary = summarize(latencies)
    return {
        "scenario": (
            "fiscal process, end to end into lancamentos "
            f"(gRPC via the gateway, {in_flight} in flight)"
        ),
        **_ratios("process", expected / took if delivered >= expected else 0.0),
        "documents": expected,
        "answered_docs_per_s": round(expected / answered, 1),
        "entries_delivered": delivered,
        "entries_in_lancamentos": booked,
        "grpc_codes": codes,
        "error_pct": error_pct(codes),
        "p50_ms": summary.p50_ms,
        "p99_ms": summary.p99_ms,
    }


def _metrics(stack: Stack) -> list[str]:
    return [s.metrics for s in stack.fiscal]


Scenario = Callable[[Stack, Path], dict[str, Any]]


def scenarios(stack: Stack, workdir: Path, *, smoke: bool) -> list[dict[str, Any]]:
    """Every fiscal measure, at toy size for CI when `smoke`."""
    seconds = 1 if smoke else 10
    signer = Signer.self_signed()
    rotating = documents(8 if smoke else 64, signer=signer)
    rows = [
        stream_rate(stack, "validate", rotating, seconds=seconds, streams=4 if smoke else 8),
        stream_rate(stack, "summarize", rotating, seconds=seconds, streams=4 if smoke else 8),
        rest_rate(
            stack, "validate", rotating, workdir, seconds=seconds, connections=4 if smoke else 16
        ),
        rest_rate(
            stack, "summarize", rotating, workdir, seconds=seconds, connections=4 if smoke else 16
        ),
        single_latency(stack, "validate", rotating, requests=20 if smoke else 300),
    ]
    # Processing: each document its own key, so each books once.
    batch = documents(40 if smoke else 3000, first=10_000, signer=signer)
    rows.append(process_end_to_end(stack, batch, in_flight=8 if smoke else 32))
    single = documents(10 if smoke else 200, first=100_000, signer=signer)
    merchant = f"bench-fiscal-single-{uuid.uuid4().hex[:6]}"
    rows.append(single_latency(stack, "process", single, requests=len(single), merchant=merchant))
    rest = documents(40 if smoke else 4000, first=200_000, signer=signer)
    query = f"?merchant_id=bench-fiscal-rest-{uuid.uuid4().hex[:6]}&merchant_document={ISSUER}"
    rows.append(
        rest_rate(
            stack,
            "process",
            rest,
            workdir,
            seconds=seconds,
            connections=4 if smoke else 16,
            query=query,
        )
    )
    return rows
