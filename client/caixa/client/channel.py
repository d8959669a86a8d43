"""Channels and the client base classes: what the blocking and the asyncio
clients share (constructor, options, deadlines, metadata, how a call from
`caixa.client.calls` is sent), and what each kind does differently."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

import grpc
import grpc.aio

from caixa.client.calls import Feed, Rpc
from caixa.client.errors import raising_caixa_errors
from caixa.client.service_config import (
    CONSOLIDADO_SERVICE,
    FISCAL_SERVICE,
    LANCAMENTOS_SERVICE,
    service_config_json,
)
from caixa.client.targets import (
    default_consolidado_target,
    default_fiscal_target,
    default_lancamentos_target,
)

Metadata = Sequence[tuple[str, str]]
Response = TypeVar("Response")
TOKEN_ENV = "CAIXA_TOKEN"

_DEFAULT_TARGETS: dict[str, Callable[[], str]] = {
    LANCAMENTOS_SERVICE: default_lancamentos_target,
    CONSOLIDADO_SERVICE: default_consolidado_target,
    FISCAL_SERVICE: default_fiscal_target,
}


def channel_options(service: str) -> list[tuple[str, int | str]]:
    """The options of every channel to `service`: retries of its idempotent methods."""
    return [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", service_config_json(service)),
    ]


def open_channel(
    target: str, service: str, credentials: grpc.ChannelCredentials | None = None
) -> grpc.Channel:
    """A blocking channel to `target` that retries `service`'s idempotent methods."""
    options = channel_options(service)
    if credentials is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, credentials, options=options)


def open_aio_channel(
    target: str, service: str, credentials: grpc.ChannelCredentials | None = None
) -> grpc.aio.Channel:
    """An asyncio channel to `target` that retries `service`'s idempotent methods."""
    options = channel_options(service)
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, credentials, options=options)


class ClientBase:
    """One channel to one service, a default deadline and the metadata sent on
    every call. Subclasses name the service (`_service`) and its stub class
    (`_stub_type`); the blocking and asyncio bases open the channel."""

    _service: ClassVar[str]
    _stub_type: ClassVar[type[Any]]

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float = 5.0,
        channel_credentials: grpc.ChannelCredentials | None = None,
        metadata: Metadata = (),
        token: str | None = None,
    ) -> None:
        """`token`: the bearer JWT sent on every call; default `$CAIXA_TOKEN`."""
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.target = target or _DEFAULT_TARGETS[self._service]()
        self.timeout = timeout
        token = token if token is not None else os.environ.get(TOKEN_ENV, "").strip()
        bearer = (("authorization", f"Bearer {token}"),) if token else ()
        self._metadata = (*tuple(metadata), *bearer)
        # The stub class makes a blocking or an asyncio stub, after the channel.
        self._stub: Any = self._stub_type(self._connect(channel_credentials))

    def _connect(self, credentials: grpc.ChannelCredentials | None) -> object:
        """Opens and keeps the channel; returns it."""
        raise NotImplementedError

    def _deadline(self, timeout: float | None, *, bounded: bool = True) -> float | None:
        """The caller's `timeout`, else the client's default, except that an
        unbounded call (a `follow` feed) then has no deadline at all."""
        if timeout is not None:
            return timeout
        return self.timeout if bounded else None

    def _invoke(self, rpc: Rpc[Any]) -> Any:
        """Starts `rpc` on the stub; what it returns depends on the stub's kind."""
        method = getattr(self._stub, rpc.method)
        return method(
            rpc.request,
            timeout=self._deadline(rpc.timeout, bounded=rpc.bounded),
            metadata=self._metadata,
        )


class ServiceClient(ClientBase):
    """The blocking client base: owns a `grpc.Channel`; `with` closes it."""

    _channel: grpc.Channel

    def _connect(self, credentials: grpc.ChannelCredentials | None) -> grpc.Channel:
        self._channel = open_channel(self.target, self._service, credentials)
        return self._channel

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    def _run(self, rpc: Rpc[Response]) -> Response:
        with raising_caixa_errors(rpc.request_id):
            response: Response = self._invoke(rpc)
            return response

    def _feed(self, feed: Feed[Response]) -> Iterator[Response]:
        with raising_caixa_errors():
            call = self._invoke(feed)
            try:
                yield from call
            finally:
                # Stops the server side when the caller abandons the generator.
                call.cancel()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncServiceClient(ClientBase):
    """The asyncio client base: owns a `grpc.aio.Channel`; `async with` closes it.
    Make it inside a running event loop, the one that will await its calls."""

    _channel: grpc.aio.Channel

    def _connect(self, credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
        self._channel = open_aio_channel(self.target, self._service, credentials)
        return self._channel

    @property
    def channel(self) -> grpc.aio.Channel:
        return self._channel

    async def _run(self, rpc: Rpc[Response]) -> Response:
        with raising_caixa_errors(rpc.request_id):
            response: Response = await self._invoke(rpc)
            return response

    async def _feed(self, feed: Feed[Response]) -> AsyncGenerator[Response, None]:
        with raising_caixa_errors():
            call = self._invoke(feed)
            try:
                async for item in call:
                    yield item
            finally:
                # Stops the server side when the caller abandons the iterator:
                # at once with `aclose()`, else when it is garbage-collected.
                call.cancel()

    async def close(self) -> None:
        """Closes the channel, cancelling the calls still in flight."""
        await self._channel.close(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
