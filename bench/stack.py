"""The processes under test: lancamentos (with its dispatcher), two consolidado
replicas and the local mesh rendered from the Helm values (gateway, inbound
sidecars, the dispatcher's egress sidecar), on free loopback ports, over fresh
databases."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.render.bundle import local_envoys
from mesh.values import load_policy
from services.consolidado.app import MIGRATIONS as CONSOLIDADO_MIGRATIONS
from services.lancamentos.app import MIGRATIONS as LANCAMENTOS_MIGRATIONS
from services.platform.migrations import upgrade
from tooling.devstack import envoy
from tooling.devstack.infra import create_database, drop_database
from tooling.devstack.mesh import MeshPorts, MeshSources
from tooling.devstack.processes import ServerProcess, free_port

NO_READ_LIMIT = [
    "mesh.upstreams.consolidado.routeClasses.reads.rateLimit.tokensPerSecond=1000000",
    "mesh.upstreams.consolidado.routeClasses.reads.rateLimit.burst=1000000",
]


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
    sources: MeshSources
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    lancamentos_db: str = ""
    consolidado_db: str = ""
    lancamentos: Service | None = None
    consolidado: list[Service] = field(default_factory=list)
    gateway_port: int = 0
    gateway_admin_port: int = 0
    _envoys: list[ServerProcess] = field(default_factory=list)
    _databases: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.lancamentos_db = self._database("bench_lancamentos", LANCAMENTOS_MIGRATIONS)
        self.consolidado_db = self._database("bench_consolidado", CONSOLIDADO_MIGRATIONS)
        ports = MeshPorts.free()
        # The bench measures capacity: the reads' rate limit (a policy choice,
        # 5,000/s by default) is lifted so it is not what gets measured.
        sets = [*ports.sets(), *NO_READ_LIMIT]
        proxies = {
            p.name: p
            for p in local_envoys(load_policy(self.sources.values, sets), self.sources.descriptor)
        }
        self.lancamentos = self._spawn(
            "lancamentos",
            ports.lancamentos[0],
            {
                "DATABASE_URL": self.lancamentos_db,
                "CONSOLIDADO_TARGET": f"127.0.0.1:{ports.egress}",
            },
        )
        for index, (app, _inbound, _admin) in enumerate(ports.consolidado):
            self.consolidado.append(
                self._spawn(
                    f"consolidado-{index}",
                    app,
                    {
                        "DATABASE_URL": self.consolidado_db,
                        "REDIS_URL": self.redis_url,
                        "REDIS_KEY_PREFIX": f"bench-{self.run_id}:bal",
                        "LANCAMENTOS_TARGET": f"127.0.0.1:{ports.lancamentos[1]}",
                    },
                )
            )
        for service in [self.lancamentos, *self.consolidado]:
            self._wait_healthy(service)
        for name, proxy in sorted(proxies.items(), key=lambda item: item[0] == "gateway"):
            path = envoy.write_config(self.workdir / proxy.filename, proxy.config)
            self._envoys.append(
                envoy.start_envoy(
                    name, path, proxy.admin_port, log_path=self.workdir / f"{name}.log"
                )
            )
        self.gateway_port, self.gateway_admin_port = ports.gateway, ports.gateway_admin

    def _database(self, prefix: str, migrations: Path) -> str:
        name = f"{prefix}_{self.run_id}"
        url = create_database(self.admin_url, name)
        self._databases.append(name)
        upgrade(migrations, url)
        return url

    def _spawn(self, name: str, port: int, env: dict[str, str]) -> Service:
        metrics_port = free_port()
        log = self.workdir / f"{name}.log"
        module = "services.lancamentos" if name == "lancamentos" else "services.consolidado"
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
        for proxy in reversed(self._envoys):
            proxy.stop(grace=10)
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
