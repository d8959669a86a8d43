"""The local stack behaves like the cluster: under steady creates through the
gateway, `kill -9` of a consolidado replica, of both, or of the dispatcher's
sidecar fails no create, and the supervisor brings each back; balances
converge. The kills go through `caixa-devstack kill`, as an operator's would."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from caixa.client import CaixaError, ConsolidadoClient, LancamentosClient
from tests.support.devstack import READY, Devstack, running_devstack
from tooling.devstack.health import grpc_serving
from tooling.devstack.processes import port_open

DAY = "2026-03-10"


@dataclass
class Load:
    """Creates (and, optionally, reads) through the gateway until stopped."""

    gateway: str
    token: str
    merchant: str = field(default_factory=lambda: f"chaos-{uuid.uuid4().hex[:8]}")
    created: int = 0
    create_failures: list[str] = field(default_factory=list)
    reads: int = 0
    read_failures: list[str] = field(default_factory=list)
    reading: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with (
            LancamentosClient(self.gateway, timeout=5, token=self.token) as writes,
            ConsolidadoClient(self.gateway, timeout=5, token=self.token) as reads,
        ):
            while not self._stop.is_set():
                try:
                    writes.create_lancamento(self.merchant, "credit", 100, value_date=DAY)
                    self.created += 1
                except CaixaError as error:
                    self.create_failures.append(str(error))
                if self.reading.is_set():
                    try:
                        reads.get_daily_balance(self.merchant, DAY)
                        self.reads += 1
                    except CaixaError as error:
                        self.read_failures.append(str(error))
                time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()


def wait_until(condition: Callable[[], bool], what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.1)


@pytest.fixture
def devstack(tmp_path: Path, pg_admin_url: str, redis_url: str) -> Iterator[Devstack]:
    with running_devstack(tmp_path, pg_admin_url, redis_url) as stack:
        stack.output.wait_for(READY, within=120)
        yield stack


def test_kill_9_of_replicas_and_the_dispatchers_sidecar_fails_no_create(
    devstack: Devstack,
) -> None:
    plan = devstack.plan
    gateway = f"127.0.0.1:{plan.gateway.listen_port}"
    replicas = list(plan.consolidado)
    token = devstack.token()
    load = Load(gateway, token)
    worker = threading.Thread(target=load.run, daemon=True)
    worker.start()

    def balance_count() -> int:
        with ConsolidadoClient(gateway, timeout=5, token=token) as client:
            try:
                return int(client.get_daily_balance(load.merchant, DAY).lancamentos_count)
            except CaixaError:
                return -1

    def kill(name: str) -> None:
        result = devstack.control("kill", name)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith(f"killed {name}")

    try:
        wait_until(lambda: load.created >= 20, "steady creates")

        # One replica: reads keep being served by the other; it comes back.
        load.reading.set()
        kill(replicas[0].name)
        wait_until(lambda: not grpc_serving(replicas[0].address), "the replica dying", 10)
        wait_until(lambda: grpc_serving(replicas[0].address), "the replica restarting", 30)
        reads_with_one_down = load.reads
        load.reading.clear()
        assert reads_with_one_down > 0 and load.read_failures == []

        # Both replicas: creates go on; once they return, balances converge.
        for replica in replicas:
            kill(replica.name)
        wait_until(
            lambda: all(grpc_serving(replica.address) for replica in replicas),
            "both replicas back",
            40,
        )
        # A fixed mark: creates go on meanwhile, so `load.created` is a moving
        # target that a lagging-but-healthy delivery may never catch.
        recovered = load.created
        wait_until(lambda: balance_count() >= recovered > 0, "the balance converging", 60)

        # The dispatcher's egress sidecar: delivery resumes after its restart.
        egress = plan.dispatcher_egress
        kill(egress.name)
        wait_until(lambda: port_open("127.0.0.1", egress.admin_port), "the sidecar back", 30)
        mark = load.created
        wait_until(lambda: balance_count() >= mark + 10, "delivery resuming", 60)
    finally:
        load.stop()
        worker.join(timeout=30)
    assert load.create_failures == []
    assert "restarting it in" in devstack.output.text
    wait_until(lambda: balance_count() == load.created, "every create delivered", 60)
    # The stack still stops cleanly.
    devstack.process.send_signal(signal.SIGINT)
    assert devstack.process.wait(timeout=90) == 0, devstack.output.text


def test_stop_keeps_a_process_down_until_start(devstack: Devstack) -> None:
    replica = devstack.plan.consolidado[1]
    result = devstack.control("stop", replica.name)
    assert result.returncode == 0 and result.stdout.startswith(f"stopped {replica.name}")
    time.sleep(3)  # past the first restart backoff: a stopped process stays down
    assert not port_open("127.0.0.1", replica.port)
    result = devstack.control("start", replica.name)
    assert result.returncode == 0 and result.stdout.startswith(f"started {replica.name}")
    wait_until(lambda: grpc_serving(replica.address), "the replica serving", 30)
    result = devstack.control("kill", "no-such-process")
    assert result.returncode == 1 and "no process 'no-such-process'" in result.stdout
