"""Turns a definition from `caixa.client.calls` into a client method.

`blocking_call(calls.get_lancamento)` is a method of the blocking client and
`async_call(calls.get_lancamento)` one of the asyncio client: each takes the
definition's arguments (mypy sees its exact signature, `help()` its docstring)
and runs the call it returns. Either way a failure raises `CaixaError`.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar

from caixa.client.calls import Feed, Lancamento, ListPage, Rpc, next_page
from caixa.client.channel import AsyncServiceClient, ServiceClient

P = ParamSpec("P")
Response = TypeVar("Response")
Method = TypeVar("Method", bound=Callable[..., Any])


def _like(method: Method, definition: Callable[..., object]) -> Method:
    """`method` under the definition's name, docstring and parameters (after `self`)."""
    method.__name__ = method.__qualname__ = definition.__name__
    method.__doc__ = definition.__doc__
    parameters = list(inspect.signature(definition).parameters.values())
    self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__signature__ = inspect.Signature([self, *parameters])  # type: ignore[attr-defined]
    return method


# --- blocking ----------------------------------------------------------------


def blocking_call(
    definition: Callable[P, Rpc[Response]],
) -> Callable[Concatenate[ServiceClient, P], Response]:
    def method(self: ServiceClient, /, *args: P.args, **kwargs: P.kwargs) -> Response:
        return self._run(definition(*args, **kwargs))

    return _like(method, definition)


def blocking_pages(
    definition: Callable[P, Rpc[ListPage]],
) -> Callable[Concatenate[ServiceClient, P], Iterator[Lancamento]]:
    def method(self: ServiceClient, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[Lancamento]:
        first = definition(*args, **kwargs)
        rpc: Rpc[ListPage] | None = first
        while rpc is not None:
            page = self._run(rpc)
            yield from page.lancamentos
            rpc = next_page(first, page)

    return _like(method, definition)


def blocking_feed(
    definition: Callable[P, Feed[Response]],
) -> Callable[Concatenate[ServiceClient, P], Iterator[Response]]:
    def method(self: ServiceClient, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[Response]:
        return self._feed(definition(*args, **kwargs))

    return _like(method, definition)


# --- asyncio -----------------------------------------------------------------


def async_call(
    definition: Callable[P, Rpc[Response]],
) -> Callable[Concatenate[AsyncServiceClient, P], Coroutine[Any, Any, Response]]:
    async def method(self: AsyncServiceClient, /, *args: P.args, **kwargs: P.kwargs) -> Response:
        return await self._run(definition(*args, **kwargs))

    return _like(method, definition)


def async_pages(
    definition: Callable[P, Rpc[ListPage]],
) -> Callable[Concatenate[AsyncServiceClient, P], AsyncGenerator[Lancamento, None]]:
    async def method(
        self: AsyncServiceClient, /, *args: P.args, **kwargs: P.kwargs
    ) -> AsyncGenerator[Lancamento, None]:
        first = definition(*args, **kwargs)
        rpc: Rpc[ListPage] | None = first
        while rpc is not None:
            page = await self._run(rpc)
            for lancamento in page.lancamentos:
                yield lancamento
            rpc = next_page(first, page)

    return _like(method, definition)


def async_feed(
    definition: Callable[P, Feed[Response]],
) -> Callable[Concatenate[AsyncServiceClient, P], AsyncGenerator[Response, None]]:
    def method(
        self: AsyncServiceClient, /, *args: P.args, **kwargs: P.kwargs
    ) -> AsyncGenerator[Response, None]:
        return self._feed(definition(*args, **kwargs))

    return _like(method, definition)
