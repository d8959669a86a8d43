"""The processes under test: lancamentos (with its dispatcher), two consolidado
replicas and the REST gateway, on free loopback ports, over fresh databases."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import envoy_gateway
from caixa.consolidado.app import MIGRATIONS as CONSOLIDADO_MIGRATIONS
from caixa.devstack import envoy
from caixa.devstack.infra import create_database, drop_database
from caixa.devstack.processes import ServerProcess
from caixa.lancamentos.app import MIGRATIONS as LANCAMENTOS_MIGRATIONS
from caixa.platform.migrations import upgrade

REPO = Path(__file__).resolve().parent.parent
DESCRIPTOR = REPO / "build" / "caixa.pb"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    name: str
    port: int
    metrics_port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"


@dataclass
class Stack:
    admin_url: str
    redis_url: str
    workdir: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    lancamentos_db: str = ""
    consolidado_db: str = ""
    lancamentos: Service | None = None
    consolidado: list[Service] = field(default_factory=list)
    gateway_port: int = 0
    gateway_admin_port: int = 0
    _envoy: ServerProcess | None = None
    _databases: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.lancamentos_db = self._database("bench_lancamentos", LANCAMENTOS_MIGRATIONS)
        self.consolidado_db = self._database("bench_consolidado", CONSOLIDADO_MIGRATIONS)
        consolidado_ports = [free_port(), free_port()]
        lancamentos_port = free_port()
        self.lancamentos = self._spawn(
            "lancamentos",
            lancamentos_port,
            {
                "DATABASE_URL": self.lancamentos_db,
                "CONSOLIDADO_TARGET": "ipv4:"
                + ",".join(f"127.0.0.1:{p}" for p in consolidado_ports),
            },
        )
        for index, port in enumerate(consolidado_ports):
            self.consolidado.append(
                self._spawn(
                    f"consolidado-{index}",
                    port,
                    {
                        "DATABASE_URL": self.consolidado_db,
                        "REDIS_URL": self.redis_url,
                        "REDIS_KEY_PREFIX": f"bench-{self.run_id}:bal",
                        "LANCAMENTOS_TARGET": f"127.0.0.1:{lancamentos_port}",
                    },
                )
            )
        for service in [self.lancamentos, *self.consolidado]:
            self._wait_healthy(service)
        self.gateway_port, self.gateway_admin_port = free_port(), free_port()
        cfg = envoy_gateway.config(
            port=self.gateway_port,
            admin_port=self.gateway_admin_port,
            descriptor=DESCRIPTOR,
            lancamentos=lancamentos_port,
            consolidado=consolidado_ports,
        )
        path = envoy.write_config(self.workdir / "gateway.json", cfg)
        self._envoy = envoy.start_envoy(
            "gateway", path, self.gateway_admin_port, log_path=self.workdir / "gateway.log"
        )

    def _database(self, prefix: str, migrations: Path) -> str:
        name = f"{prefix}_{self.run_id}"
        url = create_database(self.admin_url, name)
        self._databases.append(name)
        upgrade(migrations, url)
        return url

    def _spawn(self, name: str, port: int, env: dict[str, str]) -> Service:
        metrics_port = free_port()
        log = self.workdir / f"{name}.log"
        module = "caixa.lancamentos" if name == "lancamentos" else "caixa.consolidado"
        process = subprocess.Popen(
            [sys.executable, "-m", module, "serve"],
            env={
                **os.environ,
                **env,
                "GRPC_PORT": str(port),
                "METRICS_PORT": str(metrics_port),
                "LOG_LEVEL": "WARNING",
                "DATABASE_POOL_SIZE": "20",
            },
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        return Service(name, port, metrics_port, process, log)

    @staticmethod
    def _wait_healthy(service: Service, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        with grpc.insecure_channel(service.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if service.process.poll() is not None:
                    raise RuntimeError(f"{service.name} exited: {service.log.read_text()[-2000:]}")
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        raise RuntimeError(f"{service.name} not healthy: {service.log.read_text()[-2000:]}")

    @property
    def metrics(self) -> list[str]:
        return [s.metrics for s in [self.lancamentos, *self.consolidado] if s is not None]

    def stop(self) -> None:
        if self._envoy is not None:
            self._envoy.stop(grace=10)
        for service in [*self.consolidado, self.lancamentos]:
            if service is not None and service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for service in [*self.consolidado, self.lancamentos]:
            if service is not None:
                try:
                    service.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    service.process.kill()
        for name in self._databases:
            drop_database(self.admin_url, name)


def sql_scalar(url: str, query: str) -> object:
    async def go() -> object:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(query)
        finally:
            await conn.close()

    return asyncio.run(go())
