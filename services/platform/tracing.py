"""OpenTelemetry tracing of one service process.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set. Then every RPC served or sent
gets a span (opentelemetry-instrumentation-grpc), traces that start here are
sampled at OTEL_TRACES_SAMPLER_ARG, and traces that arrive keep the caller's
decision (the gateway's Envoy usually makes it).

Fail-safe by construction: finished spans go to a bounded in-memory queue
(dropped when full) that a background thread exports with a short timeout, so
a missing or slow collector never slows or fails a request.

Each `Tracing` owns its provider instead of setting the global one, so that
several services can run in one process (the tests do) without sharing spans.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, SpanKind

from services.platform.settings import ServiceSettings
from services.platform.trace_context import context_of, span_context

log = logging.getLogger(__name__)

# Bounded so a dead collector costs memory we chose, not memory we run out of.
_QUEUE_SPANS = 4096
_EXPORT_TIMEOUT_SECONDS = 2.0
# Probes and reflection would be most of the spans and none of the story.
_UNTRACED = ("/grpc.health.v1.", "/grpc.reflection.")


def _traced(details: Any) -> bool:
    """A plain prefix test: the instrumentation's own filters (health_check,
    service_prefix) cost 7 % of a create's CPU in py-spy, mostly isinstance
    checks against typing Protocols on every call."""
    method = details.method
    if isinstance(method, bytes):  # client call details may carry bytes (grpc#31092)
        method = method.decode()
    return not str(method).startswith(_UNTRACED)


class Tracing:
    """The process's tracer provider, or none when tracing is off."""

    def __init__(self, provider: TracerProvider | None) -> None:
        self._provider = provider
        self.tracer = (provider or trace.NoOpTracerProvider()).get_tracer("caixa")

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    def server_interceptors(self) -> list[Any]:
        if self._provider is None:
            return []
        interceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=self._provider, filter_=_traced
        )
        return [interceptor]

    def client_interceptors(self) -> list[Any]:
        if self._provider is None:
            return []
        interceptors = aio_client_interceptors(  # type: ignore[no-untyped-call]
            tracer_provider=self._provider, filter_=_traced
        )
        return list(interceptors)

    @contextmanager
    def consumer_span(self, name: str, traceparents: Sequence[str | None]) -> Iterator[None]:
        """A span for work done on behalf of earlier requests (the outbox's
        delivery of their entries). It joins the trace of the first sampled one,
        so a lone entry's trace holds its whole path, and links to the others, as
        OpenTelemetry's messaging conventions do for a batch."""
        if self._provider is None:  # off: no span to make, nothing to parse
            yield
            return
        contexts: dict[str, otel_context.Context] = {}
        for traceparent in traceparents:
            parent = context_of(traceparent)
            if traceparent and parent is not None:
                contexts.setdefault(traceparent, parent)
        sampled = [c for c in contexts.values() if span_context(c).trace_flags.sampled]
        parent = (sampled or list(contexts.values()) or [otel_context.Context()])[0]
        links = [Link(span_context(c)) for c in contexts.values() if c is not parent]
        with self.tracer.start_as_current_span(
            name,
            parent,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={"caixa.entries": len(traceparents)},
        ):
            yield

    def shutdown(self) -> None:
        """Exports what is queued, within the export timeout, then stops."""
        if self._provider is not None:
            self._provider.shutdown()


def configure_tracing(settings: ServiceSettings, service_name: str) -> Tracing:
    endpoint = settings.otel_exporter_otlp_endpoint
    if not endpoint:
        return Tracing(None)
    name = settings.otel_service_name or service_name
    provider = TracerProvider(
        resource=Resource.create({"service.name": name}),
        sampler=ParentBased(TraceIdRatioBased(settings.otel_traces_sampler_arg)),
    )
    exporter = OTLPSpanExporter(
        endpoint=endpoint,
        insecure=endpoint.startswith("http://"),
        timeout=_EXPORT_TIMEOUT_SECONDS,
    )
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter,
            max_queue_size=_QUEUE_SPANS,
            export_timeout_millis=int(_EXPORT_TIMEOUT_SECONDS * 1000),
        )
    )
    log.info(
        "tracing on",
        extra={"otlp_endpoint": endpoint, "sample_ratio": settings.otel_traces_sampler_arg},
    )
    return Tracing(provider)
