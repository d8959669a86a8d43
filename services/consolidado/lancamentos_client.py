"""The channel to lancamentos that reconcile and rebuild use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from services.domain.errors import Unavailable

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub

# Codes that mean "lancamentos can't answer now", worth a retry by the caller.
_UNREACHABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


def open_channel(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(target)


def lancamentos_stub(channel: grpc.aio.Channel) -> LancamentosServiceAsyncStub:
    return lpb_grpc.LancamentosServiceStub(channel)


def unreachable(error: grpc.aio.AioRpcError, doing: str) -> Unavailable | None:
    """The Unavailable to raise for `error`, or None when it isn't an outage."""
    if error.code() not in _UNREACHABLE:
        return None
    return Unavailable(
        f"lancamentos could not {doing} ({error.code().name}: {error.details()}); "
        "retry when it is reachable"
    )
