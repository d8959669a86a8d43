"""The one exception callers of the clients catch, decoded from gRPC statuses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


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
        """Decodes the status, and any `google.rpc.BadRequest` detail, of a failed call."""
        if not isinstance(error, grpc.Call):
            # Not a finished call (e.g. an interceptor raised): nothing to decode.
            return cls(grpc.StatusCode.UNKNOWN, str(error))
        code = error.code()
        message = error.details() or ""
        return cls(code, message, _field_violations(error))


def _field_violations(call: grpc.Call) -> list[tuple[str, str]]:
    try:
        status = rpc_status.from_call(call)
    except ValueError:
        # The rich status disagrees with the plain one; trust the plain one.
        return []
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
    """Turns any `grpc.RpcError` raised inside into a `CaixaError`."""
    try:
        yield
    except grpc.RpcError as error:
        raise CaixaError.from_rpc_error(error) from error
