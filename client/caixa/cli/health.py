"""`caixa health`: each service's gRPC health (grpc.health.v1), as kubelet asks it.

Needs no token: health is open to every caller, as a load balancer's check is.
"""

from __future__ import annotations

import argparse

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from caixa.cli.exit_codes import OK, SERVICE_FAILED

_SERVING = health_pb2.HealthCheckResponse.SERVING


def _status(target: str, timeout: float) -> str:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            return code.name if code is not None else "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def health(args: argparse.Namespace) -> tuple[str, int]:
    """One line per service; exit 0 only if every one is SERVING."""
    targets = {"lancamentos": args.lancamentos_target, "consolidado": args.consolidado_target}
    statuses = {name: _status(target, args.timeout) for name, target in targets.items()}
    lines = [f"{name:<12} {targets[name]:<24} {status}" for name, status in statuses.items()]
    serving = all(status == "SERVING" for status in statuses.values())
    return "\n".join(lines), OK if serving else SERVICE_FAILED
