"""The one exception callers of the clients catch, decoded from gRPC statuses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol, cast

import grpc
import grpc.aio
from google.rpc import error_details_pb2, status_pb2

# The rich status travels in this trailer (gRPC's own name), as a google.rpc.Status.
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class FinishedCall(Protocol):
    """What a failed call tells: a blocking `grpc.Call`, or a `grpc.aio.AioRpcError`
    (no `grpc.Call`; its trailers are a `grpc.aio.Metadata`, which iterates as the
    same `(key, value)` pairs)."""

    def code(self) -> grpc.StatusCode: ...
    def details(self) -> str | None: ...
    def trailing_metadata(self) -> Iterable[tuple[str, str | bytes]] | None: ...


class CaixaError(Exception):
    """A call failed: its canonical `code`, the server's `message`, for
    `INVALID_ARGUMENT` the `(field, description)` pairs of every bad field, and
    for a create or a reversal the `request_id` it was sent with. Resending with
    that key is safe: the service replays the first outcome, never books twice."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        field_violations: list[tuple[str, str]] | None = None,
        request_id: str | None = None,
    ) -> None:
        text = f"{code.name}: {message}"
        if request_id:
            text += f" (request_id {request_id!r}: resend with it to retry safely)"
        super().__init__(text)
        self.code = code
        self.message = message
        self.field_violations: list[tuple[str, str]] = list(field_violations or [])
        self.request_id = request_id

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, request_id: str | None = None) -> CaixaError:
        """Decodes the status, and any `google.rpc.BadRequest` detail, of a failed
        call, blocking or asyncio."""
        call: FinishedCall
        if isinstance(error, grpc.aio.AioRpcError):
            # grpc-stubs types its trailers as the plain RpcError's, which they are not.
            call = cast(FinishedCall, error)
        elif isinstance(error, grpc.Call):
            call = error
        else:
            # Not a finished call (e.g. an interceptor raised): nothing to decode.
            return cls(grpc.StatusCode.UNKNOWN, str(error), request_id=request_id)
        return cls(call.code(), call.details() or "", _field_violations(call), request_id)


def _rich_status(call: FinishedCall) -> status_pb2.Status | None:
    """The call's google.rpc.Status, read as grpcio-status does, so the client
    needs no package beyond grpcio, protobuf and googleapis-common-protos."""
    for key, value in call.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            # A rich status that disagrees with the plain one is not trusted.
            if status.code != call.code().value[0] or status.message != call.details():
                return None
            return status
    return None


def _field_violations(call: FinishedCall) -> list[tuple[str, str]]:
    status = _rich_status(call)
    if status is None:
        return []
    violations: list[tuple[str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend((v.field, v.description) for v in bad_request.field_violations)
    return violations


@contextmanager
def raising_caixa_errors(request_id: str | None = None) -> Iterator[None]:
    """Turns any `grpc.RpcError` raised inside into a `CaixaError` carrying
    `request_id`; works around `await` too, so the asyncio clients use it as well."""
    try:
        yield
    except grpc.RpcError as error:
        raise CaixaError.from_rpc_error(error, request_id) from error
