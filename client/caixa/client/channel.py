"""Channel setup and lifetime shared by the service clients."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Self

import grpc

from caixa.client.service_config import service_config_json

Metadata = Sequence[tuple[str, str]]


def open_channel(
    target: str, service: str, credentials: grpc.ChannelCredentials | None = None
) -> grpc.Channel:
    """A blocking channel to `target` that retries `service`'s idempotent methods."""
    options = [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", service_config_json(service)),
    ]
    if credentials is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, credentials, options=options)


class ServiceClient:
    """Owns one channel, a default deadline and the metadata sent on every call."""

    def __init__(
        self,
        target: str,
        service: str,
        *,
        timeout: float,
        channel_credentials: grpc.ChannelCredentials | None,
        metadata: Metadata,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.target = target
        self.timeout = timeout
        self._metadata = tuple(metadata)
        self._channel = open_channel(target, service, channel_credentials)

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    def _deadline(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    @property
    def _call_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

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
