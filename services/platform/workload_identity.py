"""The process's own identity on its calls to other services: a token read
from a file the platform keeps fresh (a Kubernetes projected service-account
token; locally, the one `make run` mints), never an end user's token.

The file is re-read when it changes, so a rotated token is used at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import grpc

from services.platform.settings import ServiceSettings


class WorkloadToken:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: tuple[int, int] | None = None
        self._header = ("authorization", "")

    def header(self) -> tuple[str, str]:
        stat = os.stat(self._path)
        if (stat.st_mtime_ns, stat.st_size) != self._seen:
            token = self._path.read_text().strip()
            self._header = ("authorization", f"Bearer {token}")
            self._seen = (stat.st_mtime_ns, stat.st_size)
        return self._header


class _Identity:
    def __init__(self, token: WorkloadToken) -> None:
        self._token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add(*self._token.header())
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# One class per call shape: grpc.aio files an interceptor under its first
# matching base only, so one class with both would miss the streams.
class _UnaryIdentity(_Identity, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _StreamIdentity(_Identity, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


def identity_interceptors(settings: ServiceSettings) -> list[Any]:
    """Interceptors that send this workload's token; none when it has no token file."""
    if not settings.workload_token_file:
        return []
    token = WorkloadToken(Path(settings.workload_token_file))
    return [_UnaryIdentity(token), _StreamIdentity(token)]
