"""A small local OTLP trace receiver: what `make run` exports traces to, since
a real collector is not part of the two-command set-up.

It takes OTLP/gRPC exports (the services' SDK and every Envoy's OpenTelemetry
tracer), keeps the newest traces in memory, and answers `caixa trace` over
HTTP with JSON:

- `GET /api/traces?limit=N`: the newest traces, one summary each;
- `GET /api/traces/ID`: one trace's spans, plus the spans of other traces
  that link into it (an outbox delivery that carried its entry in a batch).

Bounded: past `max_traces` the oldest trace is forgotten.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent import futures
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as otlp_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

log = logging.getLogger(__name__)

Json = dict[str, Any]
_KINDS = {v: k.removeprefix("SPAN_KIND_").lower() for k, v in Span.SpanKind.items()}
_STATUS = {v: k.removeprefix("STATUS_CODE_") for k, v in Status.StatusCode.items()}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind in (None, "kvlist_value", "bytes_value"):
        return None if kind is None else str(getattr(value, kind))
    return getattr(value, kind)


def _attributes(pairs: Iterable[KeyValue]) -> Json:
    return {pair.key: _value(pair.value) for pair in pairs}


def span_json(span: Span, service: str) -> Json:
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "name": span.name,
        "kind": _KINDS.get(span.kind, "unspecified"),
        "service": service,
        "start_unix_nano": span.start_time_unix_nano,
        "duration_ms": round((span.end_time_unix_nano - span.start_time_unix_nano) / 1e6, 3),
        "status": {"code": _STATUS.get(span.status.code, "UNSET"), "message": span.status.message},
        "attributes": _attributes(span.attributes),
        "links": [
            {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()} for link in span.links
        ],
    }


# A span as received, made JSON only when asked for: the receiver shares the
# machine with what it traces, and most spans are never looked at.
Received = tuple[str, Span]


class SpanStore:
    """The newest `max_traces` traces, thread-safe (gRPC and HTTP threads share it)."""

    def __init__(self, max_traces: int = 5000) -> None:
        self._max = max_traces
        self._traces: OrderedDict[str, list[Received]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, spans: Iterable[Received]) -> None:
        with self._lock:
            for service, span in spans:
                trace_id = span.trace_id.hex()
                self._traces.setdefault(trace_id, []).append((service, span))
                self._traces.move_to_end(trace_id)
            while len(self._traces) > self._max:
                self._traces.popitem(last=False)

    def summaries(self, limit: int) -> list[Json]:
        with self._lock:
            traces = list(self._traces.items())
        # Newest first by their first span's start; only those shown become JSON.
        traces.sort(key=lambda t: min(s.start_time_unix_nano for _, s in t[1]), reverse=True)
        return [_summary(tid, _json(spans)) for tid, spans in traces[:limit]]

    def trace(self, trace_id: str) -> Json | None:
        with self._lock:
            spans = list(self._traces.get(trace_id, ()))
            linking = [
                (tid, list(found))
                for tid, found in self._traces.items()
                if tid != trace_id and any(_links_to(s, trace_id) for _, s in found)
            ]
        if not spans:
            return None
        others = [(tid, _json(found)) for tid, found in linking]
        return {
            "trace_id": trace_id,
            "spans": _json(spans),
            "linked": _linked_into(trace_id, others),
        }


def _links_to(span: Span, trace_id: str) -> bool:
    return any(link.trace_id.hex() == trace_id for link in span.links)


def _json(spans: Sequence[Received]) -> list[Json]:
    return [span_json(span, service) for service, span in spans]


def _summary(trace_id: str, spans: Sequence[Json]) -> Json:
    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_span_id"] not in ids] or list(spans)
    root = min(roots, key=lambda s: s["start_unix_nano"])
    start = min(s["start_unix_nano"] for s in spans)
    end = max(s["start_unix_nano"] + s["duration_ms"] * 1e6 for s in spans)
    return {
        "trace_id": trace_id,
        "root": f"{root['service']}: {root['name']}",
        "services": sorted({s["service"] for s in spans}),
        "spans": len(spans),
        "errors": sum(1 for s in spans if s["status"]["code"] == "ERROR"),
        "start_unix_nano": start,
        "duration_ms": round((end - start) / 1e6, 3),
    }


def _linked_into(trace_id: str, others: Sequence[tuple[str, list[Json]]]) -> list[Json]:
    """Spans of other traces that link to `trace_id`, with their descendants."""
    found: list[Json] = []
    for _, spans in others:
        linking = [s for s in spans if any(k["trace_id"] == trace_id for k in s["links"])]
        wanted = {s["span_id"] for s in linking}
        grew = True
        while grew:
            more = {s["span_id"] for s in spans if s["parent_span_id"] in wanted} - wanted
            wanted |= more
            grew = bool(more)
        found += [s for s in spans if s["span_id"] in wanted]
    return found


class _OtlpTraces(otlp_grpc.TraceServiceServicer):
    def __init__(self, store: SpanStore) -> None:
        self._store = store

    def Export(  # noqa: N802 - the OTLP service's name
        self, request: otlp.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> otlp.ExportTraceServiceResponse:
        spans: list[Received] = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            service = str(resource.get("service.name", "unknown"))
            for scope_spans in resource_spans.scope_spans:
                spans += [(service, span) for span in scope_spans.spans]
        self._store.add(spans)
        return otlp.ExportTraceServiceResponse()


def _query_handler(store: SpanStore) -> type[BaseHTTPRequestHandler]:
    class Query(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            parts = [p for p in url.path.split("/") if p]
            if parts == ["api", "traces"]:
                limit = _limit(parse_qs(url.query).get("limit", ["20"])[0])
                if limit is None:
                    self._send(HTTPStatus.BAD_REQUEST, {"error": "limit: a number 1-1000"})
                    return
                self._send(HTTPStatus.OK, {"traces": store.summaries(limit)})
            elif len(parts) == 3 and parts[:2] == ["api", "traces"]:
                trace = store.trace(parts[2].lower())
                if trace is None:
                    self._send(HTTPStatus.NOT_FOUND, {"error": f"no trace {parts[2]}"})
                    return
                self._send(HTTPStatus.OK, trace)
            else:
                self._send(HTTPStatus.NOT_FOUND, {"error": "try /api/traces"})

        def _send(self, status: HTTPStatus, body: Json) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per `caixa trace` would drown the stack's own output

    return Query


def _limit(text: str) -> int | None:
    return int(text) if text.isdigit() and 1 <= int(text) <= 1000 else None


class TraceReceiver:
    """OTLP/gRPC on `otlp_port`, the JSON query API on `query_port` (0: free ports)."""

    def __init__(self, address: str, otlp_port: int, query_port: int, max_traces: int) -> None:
        self.store = SpanStore(max_traces)
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        otlp_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _OtlpTraces(self.store), self._grpc
        )
        self.otlp_port = self._grpc.add_insecure_port(f"{address}:{otlp_port}")
        if self.otlp_port == 0:
            raise OSError(f"could not bind the OTLP port {address}:{otlp_port}")
        self._http = ThreadingHTTPServer((address, query_port), _query_handler(self.store))
        self.query_port = self._http.server_address[1]
        self._address = address

    @property
    def otlp_endpoint(self) -> str:
        return f"http://{self._address}:{self.otlp_port}"

    @property
    def query_url(self) -> str:
        return f"http://{self._address}:{self.query_port}"

    def start(self) -> None:
        self._grpc.start()
        threading.Thread(target=self._http.serve_forever, name="trace-query", daemon=True).start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._grpc.stop(grace=1).wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--otlp-port", type=int, required=True)
    parser.add_argument("--query-port", type=int, required=True)
    parser.add_argument("--max-traces", type=int, default=5000)
    args = parser.parse_args(argv)
    receiver = TraceReceiver(args.address, args.otlp_port, args.query_port, args.max_traces)
    receiver.start()
    print(f"trace receiver: OTLP {receiver.otlp_endpoint}, query {receiver.query_url}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    receiver.stop()


if __name__ == "__main__":
    main()
