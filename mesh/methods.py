"""gRPC method names as the policy spells them, and what the descriptor set says of them.

A method is named `package.Service/Method` — the gRPC path without its leading slash — so
the name in the values file is exactly what Envoy and Istio match on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2

METHOD_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.[A-Z][A-Za-z0-9]*/[A-Z][A-Za-z0-9]*$")
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.[A-Z][A-Za-z0-9]*$")


def service_of(method: str) -> str:
    return method.split("/", 1)[0]


def grpc_path(method: str) -> str:
    return f"/{method}"


def service_prefix(service: str) -> str:
    return f"/{service}/"


@dataclass(frozen=True)
class MethodShape:
    client_streaming: bool
    server_streaming: bool

    @property
    def streaming(self) -> bool:
        return self.client_streaming or self.server_streaming

    def describe(self) -> str:
        if self.client_streaming and self.server_streaming:
            return "bidirectional streaming"
        if self.client_streaming:
            return "client streaming"
        if self.server_streaming:
            return "server streaming"
        return "unary"


def load_method_shapes(descriptor: Path) -> dict[str, MethodShape]:
    """Every method of every service in a FileDescriptorSet, by `package.Service/Method`."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes())
    shapes: dict[str, MethodShape] = {}
    for file in files.file:
        prefix = f"{file.package}." if file.package else ""
        for service in file.service:
            for method in service.method:
                shapes[f"{prefix}{service.name}/{method.name}"] = MethodShape(
                    client_streaming=method.client_streaming,
                    server_streaming=method.server_streaming,
                )
    return shapes
