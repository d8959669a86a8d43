"""The one start order of the local stack, whatever runs its processes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from mesh.policy import LocalTraces
from mesh.render.bundle import LocalEnvoy
from tooling.devstack.mtls import prepare
from tooling.stack.envoys import wait_membership
from tooling.stack.plan import ServicePlan, StackPlan


class Launcher(Protocol):
    async def start_trace_receiver(self, address: str, traces: LocalTraces) -> None:
        """Starts the trace receiver; `settle` waits for it."""

    async def start_service(self, service: ServicePlan) -> None:
        """Starts one service; `settle` waits for it."""

    async def start_envoys(self, envoys: Sequence[LocalEnvoy]) -> None:
        """Starts these Envoys; `settle` waits for them."""

    async def settle(self) -> None:
        """Returns once everything started so far is ready; raises if one failed."""

    def check(self) -> None:
        """Raises to abandon the bring-up (e.g. Ctrl-C); else does nothing."""


async def bring_up(plan: StackPlan, launcher: Launcher, *, within: float = 30.0) -> None:
    """consolidado, its sidecars, the front Envoys, then lancamentos, then fiscal:
    each dispatcher starts with its egress and its receiver up, and the front
    Envoys' first health checks find the sidecars. Returns when every Envoy
    counts every host healthy. The trace receiver, when there is one, comes
    first: no early span is lost.
    With mTLS, every workload's certificate is issued before anything starts."""
    if plan.mtls is not None:
        await asyncio.to_thread(prepare, plan.mtls, plan.mtls_workloads)
    if plan.traces is not None:
        await launcher.start_trace_receiver(plan.lancamentos.host, plan.traces)
    for replica in plan.consolidado:
        await launcher.start_service(replica)
    await launcher.settle()
    await launcher.start_envoys(plan.sidecars)
    await launcher.settle()
    await launcher.start_envoys(plan.front)
    await launcher.settle()
    await launcher.start_service(plan.lancamentos)
    await launcher.settle()
    for replica in plan.fiscal:
        await launcher.start_service(replica)
    await launcher.settle()
    for admin_port, hosts in plan.membership.items():
        await wait_membership(admin_port, hosts, within, launcher.check)
