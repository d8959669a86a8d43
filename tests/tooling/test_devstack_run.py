"""`make run` end to end: the devstack as a user starts it (its own process, the
real services as children, the Envoys of values-local.yaml on ports moved by
`--set`), used through the gateway, then stopped with Ctrl-C."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from caixa.cli.dev_tokens import dev_key, mint
from caixa.client import CaixaError, ConsolidadoClient, LancamentosClient
from services.platform.local_stack import write_stack
from tests.support.devstack import READY, Devstack, running_devstack
from tests.support.rest import http_request
from tooling.devstack.envoy import stats
from tooling.devstack.main import stack_dir_env
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
    # Its operations lines need no flags: the commands find this stack.
    operations = operations_lines(output.text)
    assert [line.split()[1] for line in operations] == ["reconcile", "rebuild", "parked"]
    for flag in ("--database-url", "--lancamentos-target", "--redis-url", "CAIXA_STACK_DIR"):
        assert flag not in "\n".join(operations)
    # While it runs, stack.json names it and its launcher.
    stack = json.loads((devstack.state_dir / "stack.json").read_text(encoding="utf-8"))
    assert stack["launcher_pid"] == process.pid
    assert stack["services"]["consolidado"]["LANCAMENTOS_TARGET"] == plan.lancamentos.address
    merchant = "m1"  # the merchant of the banner's token
    inside = devstack.state_dir.parent / "some" / "folder"
    inside.mkdir(parents=True)
    token = banner_token(output.text, inside)

    # Without a token, through the gateway: refused by the service behind it.
    with (
        LancamentosClient(gateway, token="") as anonymous,
        pytest.raises(CaixaError) as refused,
    ):
        anonymous.create_lancamento(merchant, "credit", 1, value_date=DAY)
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    with (
        LancamentosClient(gateway, token=token) as lancamentos,
        ConsolidadoClient(gateway, token=token) as consolidado,
    ):
        lancamentos.create_lancamento(merchant, "credit", 1050, value_date=DAY)
        entry = {"kind": "KIND_DEBIT", "amount_cents": 250, "request_id": "r-1", "value_date": DAY}
        path = f"/v1/merchants/{merchant}/lancamentos"
        reply = http_request(f"http://{gateway}", "POST", path, entry)
        # The gateway's jwt_authn answers, in the services' error shape.
        assert (reply.status, reply.body["code"]) == (401, 16), reply.body
        forged = mint(
            dev_key(inside / "another-key"),
            subject="x",
            merchants=["*"],
            scopes=["lancamentos:write"],
            ttl_seconds=60,
        )
        reply = http_request(
            f"http://{gateway}", "POST", path, entry, headers={"authorization": f"Bearer {forged}"}
        )
        assert (reply.status, reply.body["code"]) == (401, 16), reply.body
        denied = stats(plan.gateway.admin_port, "jwt_authn")
        assert denied.get("http.gateway.jwt_authn.denied", 0) >= 2, denied
        reply = http_request(
            f"http://{gateway}", "POST", path, entry, headers={"authorization": f"Bearer {token}"}
        )
        assert reply.status == 200, reply.body
        traced = reply.headers["x-trace-id"]
        # The token is the banner's: merchant m1 only.
        with pytest.raises(CaixaError) as other:
            lancamentos.create_lancamento("m2", "credit", 1, value_date=DAY)
        assert other.value.code == grpc.StatusCode.PERMISSION_DENIED
        # The dispatcher delivers through its egress sidecar to both replicas' sidecars.
        deadline = time.monotonic() + 30
        while (balance := consolidado.get_daily_balance(merchant, DAY)).lancamentos_count < 2:
            assert time.monotonic() < deadline, balance
            time.sleep(0.2)
        assert balance.closing_balance_cents == 800
    # The banner's trace command draws that create, gateway to consolidado's ingest.
    [last] = [x.strip() for x in output.text.splitlines() if " trace" in x and "--last" in x]
    pasted = last.split("--last")[0] + traced
    hops = ["gateway:", "inbound-lancamentos-0:", "lancamentos: outbox deliver", "egress-"]
    hops += ["consolidado: /consolidado.v1.ConsolidadoIngestService/ApplyLancamentos"]
    deadline = time.monotonic() + 20
    while not all(hop in (drawn := run_pasted(pasted, inside, venv=True)).stdout for hop in hops):
        assert time.monotonic() < deadline, drawn
        time.sleep(0.5)
    check_metrics(devstack, output.text)

    # Pasted as printed, in a folder of the checkout the stack runs from, with
    # nothing in the environment to say where its databases are.
    using = f"using the local stack of {devstack.state_dir} (launcher pid {process.pid})"
    results = {line.split()[1]: run_pasted(line, inside) for line in operations}
    for command, result in results.items():
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        assert result.stderr.strip().splitlines()[0].endswith(using), result.stderr
    assert "m1: 1 days checked, 0 drifting" in results["reconcile"].stdout
    assert "no parked entries" in results["parked"].stdout

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=90) == 0, output.text
    assert "everything stopped" in output.text
    assert not (devstack.state_dir / "stack.json").exists()
    assert [port for port in plan.ports if port_open("127.0.0.1", port, timeout=0.2)] == []


def check_metrics(devstack: Devstack, banner: str) -> None:
    """With a prometheus binary, make run's Prometheus scrapes every service and
    every Envoy, and has seen the creates; without one, the banner says how."""
    [line] = [x.strip() for x in banner.splitlines() if x.strip().startswith("metrics ")]
    if shutil.which("prometheus") is None:
        assert "apt-get install prometheus" in line, line
        return
    url = line.split()[1]
    plan = devstack.plan

    def get(path: str) -> Any:
        with urllib.request.urlopen(f"{url}{path}", timeout=5) as response:
            return json.load(response)["data"]

    deadline = time.monotonic() + 30
    query = urllib.parse.quote('sum(grpc_server_handled_total{grpc_method="CreateLancamento"})')
    while True:
        targets = get("/api/v1/targets")["activeTargets"]
        up = {t["labels"]["process"] for t in targets if t["health"] == "up"}
        seen = get(f"/api/v1/query?query={query}")["result"]
        if up == {*(s.name for s in plan.services), *(e.name for e in plan.envoys)} and seen:
            break
        assert time.monotonic() < deadline, (targets, seen)
        time.sleep(1)
    assert float(seen[0]["value"][1]) >= 3  # two created, one refused for m2
    envoy = urllib.parse.quote("envoy_cluster_upstream_rq_total")
    assert get(f"/api/v1/query?query={envoy}")["result"], "no Envoy stats"


def banner_token(banner: str, cwd: Path) -> str:
    """The token the banner's `export CAIXA_TOKEN=$(caixa token ...)` line mints,
    pasted as printed."""
    [line] = [x.strip() for x in banner.splitlines() if "export CAIXA_TOKEN=" in x]
    result = run_pasted(f'{line} && printf %s "$CAIXA_TOKEN"', cwd, venv=True)
    assert result.returncode == 0 and result.stdout.count(".") == 2, result
    return result.stdout


def operations_lines(banner: str) -> list[str]:
    lines = banner.split("Operations (", 1)[1].split("Ctrl-C stops", 1)[0].splitlines()[1:]
    return [line.strip() for line in lines if line.strip()]


def run_pasted(line: str, cwd: Path, *, venv: bool = False) -> subprocess.CompletedProcess[str]:
    """`venv`: with the venv activated, as the README asks for a bare `caixa`."""
    path = f"{Path(sys.executable).parent}:/usr/bin:/bin" if venv else "/usr/bin:/bin"
    return subprocess.run(
        ["bash", "-c", line],
        cwd=cwd,
        env={"PATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_second_launcher_on_the_same_state_refuses_and_leaves_the_first_alone(
    devstack: Devstack,
) -> None:
    devstack.output.wait_for(READY, within=120)
    second = subprocess.run(devstack.argv, capture_output=True, text=True, timeout=60, check=False)
    assert second.returncode == 1
    assert "another Caixa stack is running" in second.stdout + second.stderr
    assert devstack.process.poll() is None
    assert (devstack.state_dir / "stack.json").exists()  # the first one's, left alone
    gateway = devstack.plan.gateway
    assert port_open("127.0.0.1", gateway.listen_port)
    with LancamentosClient(f"127.0.0.1:{gateway.listen_port}", token=devstack.token()) as client:
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


def test_the_banner_points_the_commands_at_a_stack_they_would_not_find(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "checkout"
    write_stack(checkout / ".devstack", {})
    (checkout / "sub").mkdir()
    monkeypatch.chdir(checkout / "sub")
    assert stack_dir_env(checkout / ".devstack", {}) == ""
    # A --state-dir they would not look in, from here.
    write_stack(tmp_path / "state", {})
    assert stack_dir_env(tmp_path / "state", {}) == f"CAIXA_STACK_DIR={tmp_path / 'state'} "
    assert stack_dir_env(tmp_path / "state", {"CAIXA_STACK_DIR": str(tmp_path / "state")}) == ""


def test_a_prometheus_that_will_not_start_does_not_stop_the_stack(
    tmp_path: Path, pg_admin_url: str, redis_url: str
) -> None:
    """Prometheus is optional: one that exits at once costs a warning, not the stack."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "prometheus").write_text("#!/bin/sh\necho 'cannot start' >&2\nexit 1\n")
    (fake / "prometheus").chmod(0o755)
    with running_devstack(tmp_path, pg_admin_url, redis_url, path_first=fake) as devstack:
        devstack.output.wait_for(READY, within=120)
        assert "Prometheus did not start" in devstack.output.text
        [line] = [x for x in devstack.output.text.splitlines() if x.strip().startswith("metrics ")]
        assert "apt-get install prometheus" in line
        gateway = devstack.plan.gateway
        with LancamentosClient(f"127.0.0.1:{gateway.listen_port}", token=devstack.token()) as c:
            c.create_lancamento("m1", "credit", 100, value_date=DAY)
