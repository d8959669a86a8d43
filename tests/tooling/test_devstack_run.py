"""`make run` end to end: the devstack as a user starts it (its own process, the
real services as children, the Envoys of values-local.yaml on ports moved by
`--set`), used through the gateway, then stopped with Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from caixa.client import ConsolidadoClient, LancamentosClient
from tests.support.devstack import READY, Devstack, running_devstack
from tests.support.rest import http_request
from tooling.devstack.processes import port_open

DAY = "2026-03-10"


@pytest.fixture
def devstack(tmp_path: Path, pg_admin_url: str, redis_url: str) -> Iterator[Devstack]:
    with running_devstack(tmp_path, pg_admin_url, redis_url) as stack:
        yield stack


def test_make_run_serves_the_stack_and_stops_on_ctrl_c(
    devstack: Devstack,
) -> None:
    plan, process, output = devstack.plan, devstack.process, devstack.output
    output.wait_for(READY, within=120)
    gateway = f"127.0.0.1:{plan.gateway.listen_port}"
    assert f"gateway      {gateway}" in output.text
    # The banner's examples ask for the business day whatever the terminal's zone.
    assert "daily-balances/$(TZ=America/Sao_Paulo date +%F)" in output.text
    # Its operations line names this stack, so it works when pasted.
    [reconcile] = [line for line in output.text.splitlines() if " reconcile " in line]
    assert f"--lancamentos-target {plan.lancamentos.address}" in reconcile
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


def test_a_second_launcher_on_the_same_state_refuses_and_leaves_the_first_alone(
    devstack: Devstack,
) -> None:
    devstack.output.wait_for(READY, within=120)
    second = subprocess.run(devstack.argv, capture_output=True, text=True, timeout=60, check=False)
    assert second.returncode == 1
    assert "another Caixa stack is running" in second.stdout + second.stderr
    assert devstack.process.poll() is None
    gateway = devstack.plan.gateway
    assert port_open("127.0.0.1", gateway.listen_port)
    with LancamentosClient(f"127.0.0.1:{gateway.listen_port}") as client:
        client.create_lancamento(f"dev-{uuid.uuid4().hex[:8]}", "credit", 1, value_date=DAY)


def test_a_signal_delivered_twice_at_once_is_one_clean_stop(devstack: Devstack) -> None:
    """As `kill -TERM -PGID` does, or Ctrl-C reaching make and the launcher: not
    the deliberate second Ctrl-C that hurries the stop."""
    devstack.output.wait_for(READY, within=120)
    devstack.process.send_signal(signal.SIGTERM)
    time.sleep(0.2)  # make relays its own copy a moment later
    devstack.process.send_signal(signal.SIGTERM)
    assert devstack.process.wait(timeout=90) == 0, devstack.output.text
    text = devstack.output.text
    assert "did not stop in time" not in text and "killing what is left" not in text
    assert "everything stopped" in text
