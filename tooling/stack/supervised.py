"""A launcher that runs the stack's processes as supervised children (the
devstack and the bench), each service as `python -m services.<name> serve`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

from mesh.policy import LocalTraces
from mesh.render.bundle import LocalEnvoy
from tooling.devstack import envoy
from tooling.devstack.health import grpc_serving, http_ok
from tooling.devstack.supervisor import Supervisor
from tooling.stack.plan import ServicePlan

# Stop order, highest first: the gateway stops taking traffic, fiscal drains
# its outbox into lancamentos, lancamentos drains its own through the egress
# sidecar into consolidado's inbound sidecars, and only then do those and
# consolidado stop.
GATEWAY_TIER = 7
FISCAL_TIER = 6
LANCAMENTOS_TIER = 5
EGRESS_TIER = 4
CONSOLIDADO_INBOUND_TIER = 3
CONSOLIDADO_TIER = 2
# Last: it takes the spans of everything that stops before it.
TRACES_TIER = 1
TRACE_RECEIVER = "traces"

ServiceEnv = Callable[[ServicePlan], Mapping[str, str]]


def tier_of(name: str) -> int:
    if name == TRACE_RECEIVER:
        return TRACES_TIER
    if name == "gateway":
        return GATEWAY_TIER
    if name == "lancamentos":
        return LANCAMENTOS_TIER
    if name.startswith("fiscal"):
        return FISCAL_TIER
    if name.startswith("consolidado"):
        return CONSOLIDADO_TIER
    if name.startswith("inbound-consolidado"):
        return CONSOLIDADO_INBOUND_TIER
    return EGRESS_TIER


def service_argv(service: str, command: str) -> list[str]:
    return [sys.executable, "-m", f"services.{service}", command]


class Supervised:
    """`env_of(service)` is the whole environment of that service's process; the
    plan's wiring (ports, targets) is laid over it."""

    def __init__(
        self,
        supervisor: Supervisor,
        config_dir: Path,
        env_of: ServiceEnv,
        *,
        envoy_env: Mapping[str, str],
        ready_timeout: float,
    ) -> None:
        self._supervisor = supervisor
        self._config_dir = config_dir
        self._env_of = env_of
        self._envoy_env = envoy_env
        self._ready_timeout = ready_timeout

    async def start_trace_receiver(self, address: str, traces: LocalTraces) -> None:
        self._supervisor.start(
            TRACE_RECEIVER,
            [
                sys.executable,
                "-m",
                "tooling.devstack.trace_receiver",
                f"--address={address}",
                f"--otlp-port={traces.otlp_port}",
                f"--query-port={traces.query_port}",
            ],
            env=self._envoy_env,
            ready=partial(http_ok, f"http://{address}:{traces.query_port}/api/traces?limit=1"),
            tier=TRACES_TIER,
        )

    async def start_service(self, service: ServicePlan) -> None:
        self._supervisor.start(
            service.name,
            service_argv(service.service, "serve"),
            env={**self._env_of(service), **service.env},
            ready=partial(grpc_serving, service.address),
            tier=tier_of(service.name),
        )

    async def start_envoys(self, envoys: Sequence[LocalEnvoy]) -> None:
        for proxy in envoys:
            config = envoy.write_config(self._config_dir / proxy.filename, proxy.config)
            self._supervisor.start(
                proxy.name,
                envoy.envoy_argv(config),
                env=self._envoy_env,
                ready=partial(envoy.envoy_ready, proxy.admin_port),
                tier=tier_of(proxy.name),
            )

    async def settle(self) -> None:
        self._supervisor.wait_ready(self._ready_timeout)

    def check(self) -> None:
        self._supervisor.check()
