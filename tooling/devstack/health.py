"""Readiness checks from synchronous code: gRPC health (grpc.health.v1), HTTP."""

from __future__ import annotations

import urllib.request
from http import HTTPStatus

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def grpc_serving(target: str, service: str = "", timeout: float = 1.0) -> bool:
    """Whether `target` reports SERVING for `service` ("" is the whole server)."""
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == HTTPStatus.OK)
    except OSError:
        return False
