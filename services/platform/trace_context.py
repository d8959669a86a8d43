"""The W3C trace context of the request being served, as text: what the outbox
stores with each entry and the logs print. The OpenTelemetry API alone, so the
use cases and the store can carry it without the SDK's setup."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def current_traceparent() -> str | None:
    """The W3C traceparent of the span the caller runs in, or None outside one."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def context_of(traceparent: str | None) -> otel_context.Context | None:
    """The remote context a stored traceparent names; None if it names none."""
    if not traceparent:
        return None
    carrier: Mapping[str, str] = {"traceparent": traceparent}
    extracted = _PROPAGATOR.extract(carrier)
    if not span_context(extracted).is_valid:
        return None
    return extracted


def log_ids() -> dict[str, str]:
    """`trace_id` and `span_id` of the current span, for the JSON logs."""
    current = trace.get_current_span().get_span_context()
    if not current.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(current.trace_id),
        "span_id": trace.format_span_id(current.span_id),
    }


def span_context(context: otel_context.Context) -> trace.SpanContext:
    return trace.get_current_span(context).get_span_context()
