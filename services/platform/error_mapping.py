"""The one place where exceptions become gRPC statuses.

Every handler is wrapped, so a servicer just raises domain errors. Errors are
sent before any response message, which makes unary failures trailers-only
responses: Envoy sees `grpc-status` in the headers.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.domain.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from services.platform import rpc_metrics
from services.platform.audit import current_method
from services.platform.guard import Guard, current_principal
from services.platform.outages import is_dependency_outage

log = logging.getLogger(__name__)

_CODES: dict[type[DomainError], int] = {
    InvalidArgument: code_pb2.INVALID_ARGUMENT,
    NotFound: code_pb2.NOT_FOUND,
    AlreadyExists: code_pb2.ALREADY_EXISTS,
    FailedPrecondition: code_pb2.FAILED_PRECONDITION,
    Unauthenticated: code_pb2.UNAUTHENTICATED,
    PermissionDenied: code_pb2.PERMISSION_DENIED,
    Unavailable: code_pb2.UNAVAILABLE,
}


def status_for(exc: BaseException) -> status_pb2.Status:
    """The google.rpc.Status a caller gets for `exc`."""
    if isinstance(exc, DomainError) and not isinstance(exc, Unavailable):
        code = next(code for kind, code in _CODES.items() if isinstance(exc, kind))
        status = status_pb2.Status(code=code, message=exc.message)
        if isinstance(exc, InvalidArgument):
            detail = any_pb2.Any()
            detail.Pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in exc.violations
                    ]
                )
            )
            status.details.append(detail)
        return status
    if is_dependency_outage(exc):
        log.warning("dependency unavailable: %s", exc, extra={"error": type(exc).__name__})
        # A domain Unavailable says which dependency; driver errors stay generic.
        what = exc.message if isinstance(exc, Unavailable) else "a dependency is unavailable"
        return status_pb2.Status(code=code_pb2.UNAVAILABLE, message=f"{what}; retry with backoff")
    reference = uuid.uuid4().hex[:12]
    log.error("unhandled error (ref %s)", reference, exc_info=exc)
    return status_pb2.Status(
        code=code_pb2.INTERNAL, message=f"internal error; quote reference {reference}"
    )


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], status: Any) -> None:
    """Ends the call with `status` (a grpc_status Status); raises AbortError."""
    await context.abort(status.code, status.details, status.trailing_metadata)


def _ended(code: str, context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """A call cut off at its deadline is DEADLINE_EXCEEDED, not a caller leaving."""
    remaining = context.time_remaining()
    if code == "CANCELLED" and remaining is not None and remaining <= 0:
        return "DEADLINE_EXCEEDED"
    return code


def _code_of(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The code a handler aborted with itself."""
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


Behavior = Callable[..., Any]


async def _guarded(
    guard: Guard | None,
    method: str,
    request: Any,
    context: grpc.aio.ServicerContext[Any, Any],
    *,
    streaming_request: bool,
) -> Any:
    """The request once its caller is admitted (see guard); unchanged when
    the service runs without authentication."""
    current_method.set(method)
    if guard is None or not guard.guards(method):
        return request
    rule, principal = await guard.admit(method, context)
    if streaming_request:
        return guard.checked_stream(rule, principal, request)
    return guard.check(rule, principal, request)


@contextlib.asynccontextmanager
async def _ending(
    context: grpc.aio.ServicerContext[Any, Any], metrics: rpc_metrics.MethodMetrics
) -> AsyncIterator[None]:
    """One call, start to status: a raised exception becomes its status, and
    the status is counted, exactly once, however the call ends."""
    started = metrics.started()
    code = "CANCELLED"  # unless it ends otherwise: the caller went away
    try:
        try:
            yield
        except grpc.aio.AbortError:
            code = _code_of(context)
            raise
        except Exception as exc:
            status = rpc_status.to_status(status_for(exc))  # logs it, once
            code = status.code.name
            await abort_with(context, status)
        code = "OK"
    finally:
        metrics.handled(_ended(code, context), started)


def _wrap_unary_response(
    behavior: Behavior,
    method: str,
    guard: Guard | None,
    *,
    streaming_request: bool,
    metrics: rpc_metrics.MethodMetrics,
) -> Behavior:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        async with _ending(context, metrics):
            request = await _guarded(
                guard, method, request, context, streaming_request=streaming_request
            )
            return await behavior(request, context)

    return wrapped


def _wrap_stream_response(
    behavior: Behavior,
    method: str,
    guard: Guard | None,
    *,
    streaming_request: bool,
    metrics: rpc_metrics.MethodMetrics,
) -> Behavior:
    async def wrapped(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        async with _ending(context, metrics):
            request = await _guarded(
                guard, method, request, context, streaming_request=streaming_request
            )
            caller = current_principal.get()
            async for response in behavior(request, context):
                # A feed may outlive its token: nothing is sent past its expiry.
                if caller is not None and caller.expired:
                    raise Unauthenticated(
                        "the token expired during the stream; resume with a fresh one"
                    )
                yield response

    return wrapped


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Wraps every handler so raised exceptions become proper statuses."""

    def __init__(self, guard: Guard | None = None) -> None:
        # grpc.aio asks for the handler on every call; wrapping once per method
        # keeps the per-call cost to a dict lookup. That is only right when the
        # continuation is the plain handler lookup: keep this interceptor last.
        self._wrapped: dict[str, Any] = {}
        self._guard = guard

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler: Any = await continuation(handler_call_details)
            if handler is None:
                return None
            wrapped = self._wrapped[method] = _wrap(handler, method, self._guard)
        return wrapped


def _wrap(handler: Any, method: str, guard: Guard | None) -> Any:
    """The same handler, its behaviour wrapped to check the caller, map errors
    and record metrics."""
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }

    def metrics(grpc_type: str) -> rpc_metrics.MethodMetrics:
        return rpc_metrics.for_method(method, grpc_type)

    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _wrap_unary_response(
                handler.unary_unary,
                method,
                guard,
                streaming_request=False,
                metrics=metrics("unary"),
            ),
            **serializers,
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            _wrap_unary_response(
                handler.stream_unary,
                method,
                guard,
                streaming_request=True,
                metrics=metrics("client_stream"),
            ),
            **serializers,
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            _wrap_stream_response(
                handler.unary_stream,
                method,
                guard,
                streaming_request=False,
                metrics=metrics("server_stream"),
            ),
            **serializers,
        )
    return grpc.stream_stream_rpc_method_handler(
        _wrap_stream_response(
            handler.stream_stream,
            method,
            guard,
            streaming_request=True,
            metrics=metrics("bidi_stream"),
        ),
        **serializers,
    )
