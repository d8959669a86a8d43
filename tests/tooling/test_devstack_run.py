"""`make run` end to end: the devstack as a user starts it (its own process, the
real services as children, the Envoys of values-local.yaml on ports moved by
`--set`), used through the gateway, then stopped with Ctrl-C."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from caixa.client import ConsolidadoClient, LancamentosClient
from tests.support.paths import MESH_SOURCES, REPO_ROOT
from tests.support.rest import http_request
from tooling.devstack.infra import drop_database
from tooling.devstack.processes import port_open
from tooling.stack.plan import StackPlan, free_port_sets

READY = "Caixa is running."
DAY = "2026-03-10"


class Output:
    """The devstack's output, read in the background so the pipe never fills."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            self._queue.put(line)

    def wait_for(self, text: str, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            self.lines.append(line)
            if text in line:
                return
        pytest.fail(f"no {text!r} within {within}s:\n{self.text}")

    @property
    def text(self) -> str:
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return "".join(self.lines)


@pytest.fixture
def devstack(
    tmp_path: Path, pg_admin_url: str, redis_url: str
) -> Iterator[tuple[StackPlan, subprocess.Popen[str], Output]]:
    sets = free_port_sets(MESH_SOURCES)
    plan = StackPlan.render(MESH_SOURCES, sets)
    prefix = f"devstack_{uuid.uuid4().hex[:8]}"
    argv = [sys.executable, "-m", "tooling.devstack", "--repo", str(REPO_ROOT)]
    argv += ["--state-dir", str(tmp_path), "--database-prefix", prefix]
    argv += [arg for assignment in sets for arg in ("--set", assignment)]
    process = subprocess.Popen(
        argv,
        env={
            "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
            "DATABASE_URL": pg_admin_url,
            "REDIS_URL": redis_url,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    try:
        yield plan, process, output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        for service in ("lancamentos", "consolidado"):
            drop_database(pg_admin_url, f"{prefix}_{service}")


def test_make_run_serves_the_stack_and_stops_on_ctrl_c(
    devstack: tuple[StackPlan, subprocess.Popen[str], Output],
) -> None:
    plan, process, output = devstack
    output.wait_for(READY, within=120)
    gateway = f"127.0.0.1:{plan.gateway.listen_port}"
    assert f"gateway      {gateway}" in output.text
    merchant = f"dev-{uuid.uuid4().hex[:8]}"

    with LancamentosClient(gateway) as lancamentos, ConsolidadoClient(gateway) as consolidado:
        lancamentos.create_lancamento(merchant, "credit", 1050, value_date=DAY)
        reply = http_request(
            f"http://{gateway}",
            "POST",
            f"/v1/merchants/{merchant}/lancamentos",
            {"kind": "KIND_DEBIT", "amount_cents": 250, "request_id": "r-1", "value_date": DAY},
        )
        assert reply.status == 200, reply.body
        # The dispatcher delivers through its egress sidecar to both replicas' sidecars.
        deadline = time.monotonic() + 30
        while (balance := consolidado.get_daily_balance(merchant, DAY)).lancamentos_count < 2:
            assert time.monotonic() < deadline, balance
            time.sleep(0.2)
        assert balance.closing_balance_cents == 800

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=90) == 0, output.text
    assert "everything stopped" in output.text
    assert [port for port in plan.ports if port_open("127.0.0.1", port, timeout=0.2)] == []
