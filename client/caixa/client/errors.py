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
    """A call failed: its canonical `code`, the server's `message`, and for
    `INVALID_ARGUMENT` the `(field, description)` pairs of every bad field."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        field_violations: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field_violations: list[tuple[str, str]] = list(field_violations or [])

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> CaixaError:
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
            return cls(grpc.StatusCode.UNKNOWN, str(error))
        return cls(call.code(), call.details() or "", _field_violations(call))


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
def raising_caixa_errors() -> Iterator[None]:
    """Turns any `grpc.RpcError` raised inside into a `CaixaError`; works around
    `await` too, so the asyncio clients use it as well."""
    try:
        yield
    except grpc.RpcError as error:
        raise CaixaError.from_rpc_error(error) from error
