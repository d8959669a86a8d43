"""`make run`: the whole Caixa stack on this machine.

1. PostgreSQL and Redis: `DATABASE_URL` / `REDIS_URL` when set and reachable,
   else real embedded servers with their files in `./.devstack/`.
2. Databases `caixa_lancamentos` and `caixa_consolidado`, migrated.
3. lancamentos on `LANCAMENTOS_PORT` (50051) and consolidado replicas on
   `CONSOLIDADO_PORTS` (50052,50053), each waited for through gRPC health.
4. The local mesh, rendered from helm/caixa/values.yaml + values-local.yaml:
   the gateway on :8080 (gRPC and REST), an inbound sidecar per replica, and
   the egress sidecar through which lancamentos' dispatcher reaches consolidado.
Ctrl-C or SIGTERM stops everything in dependency order (see devstack.mesh).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from mesh.render.bundle import LocalEnvoy
from tooling.devstack import envoy, mesh
from tooling.devstack.health import grpc_serving
from tooling.devstack.infra import ServerHandle, create_database, ensure_postgres, ensure_redis
from tooling.devstack.processes import LOOPBACK, StartupError, port_open
from tooling.devstack.supervisor import ChildExited, StopRequested, Supervisor
from tooling.devstack.urls import redact

log = logging.getLogger("tooling.devstack")

SERVICES = ("lancamentos", "consolidado")
MIGRATE_TIMEOUT = 120.0
READY_TIMEOUT = 60.0
CLI_DEFAULT_GATEWAY_PORT = 8080  # where `caixa` connects without flags


@dataclass(frozen=True)
class Ports:
    lancamentos: int = 50051
    consolidado: tuple[int, ...] = (50052, 50053)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Ports:
        """`LANCAMENTOS_PORT` and `CONSOLIDADO_PORTS` ("50052,50053"), else defaults."""
        lancamentos = _port(env.get("LANCAMENTOS_PORT") or str(cls.lancamentos))
        raw = env.get("CONSOLIDADO_PORTS") or ",".join(map(str, cls.consolidado))
        consolidado = tuple(_port(p) for p in raw.split(",") if p.strip())
        if not consolidado:
            raise ValueError("CONSOLIDADO_PORTS names no port")
        if len({lancamentos, *consolidado}) != 1 + len(consolidado):
            raise ValueError("LANCAMENTOS_PORT and CONSOLIDADO_PORTS must all differ")
        return cls(lancamentos, consolidado)


def _port(raw: str) -> int:
    port = int(raw.strip())
    if not 0 < port < 65536:
        raise ValueError(f"invalid port {raw!r}")
    return port


def _child_env(base: Mapping[str, str], **values: str) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(values)
    return env


def _module(service: str, command: str) -> list[str]:
    return [sys.executable, "-m", f"services.{service}", command]


def _check_ports_free(ports: Ports, proxies: list[LocalEnvoy]) -> None:
    proxy_ports = [p for proxy in proxies for p in (proxy.listen_port, proxy.admin_port)]
    for port in (ports.lancamentos, *ports.consolidado, *proxy_ports):
        if port_open(LOOPBACK, port, timeout=0.3):
            raise StartupError(
                f"port {port} is already in use (another `make run`?); "
                "choose others with LANCAMENTOS_PORT / CONSOLIDADO_PORTS, or the "
                "mesh ports in helm/caixa/values-local.yaml"
            )


def _cli_command() -> str:
    if shutil.which("caixa"):
        return "caixa"
    script = Path(sys.executable).parent / "caixa"
    if script.exists():
        try:
            return str(script.relative_to(Path.cwd()))
        except ValueError:
            return str(script)
    return f"{sys.executable} -m caixa.cli"


def banner(
    ports: Ports,
    gateway: LocalEnvoy,
    postgres: ServerHandle,
    redis: ServerHandle,
    log_dir: Path,
) -> str:
    def where(handle: ServerHandle) -> str:
        kind = f"embedded, files in {handle.data_dir}" if handle.embedded else "external"
        return f"{redact(handle.url)}  ({kind})"

    cli = _cli_command()
    front = f"{LOOPBACK}:{gateway.listen_port}"
    if gateway.listen_port != CLI_DEFAULT_GATEWAY_PORT:
        cli += f" --lancamentos-target {front} --consolidado-target {front}"
    rest = f"http://localhost:{gateway.listen_port}"
    replicas = ", ".join(f"{LOOPBACK}:{port}" for port in ports.consolidado)
    return "\n".join(
        [
            "",
            "Caixa is running.",
            f"  gateway      {front}  (gRPC and REST/JSON; Envoy admin :{gateway.admin_port})",
            f"  lancamentos  {LOOPBACK}:{ports.lancamentos}  (direct, behind its sidecar)",
            f"  consolidado  {replicas}",
            f"  PostgreSQL   {where(postgres)}",
            f"  Redis        {where(redis)}",
            f"  logs         {log_dir}/*.log",
            "Try:",
            f"  {cli} create --merchant m1 --kind credit --amount 10.50",
            f"  {cli} balance --merchant m1",
            f"  curl -s -X POST {rest}/v1/merchants/m1/lancamentos \\",
            "       -H 'content-type: application/json' \\",
            """       -d '{"kind":"KIND_DEBIT","amount_cents":250,"request_id":"r-1"}'""",
            f"  curl -s {rest}/v1/merchants/m1/daily-balances/$(date +%F)",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def run(
    state_dir: Path, sources: mesh.MeshSources, ports: Ports, environ: Mapping[str, str]
) -> int:
    """Brings the stack up and keeps it up until a signal; the exit status."""
    supervisor = Supervisor(state_dir / "logs")
    supervisor.install_signal_handlers()
    handles: list[ServerHandle] = []
    try:
        supervisor.stop_leftovers()
        sets = mesh.port_overrides(ports.lancamentos, ports.consolidado)
        proxies = mesh.local_mesh(sources, sets)
        by_name = {proxy.name: proxy for proxy in proxies}
        _check_ports_free(ports, proxies)
        postgres = ensure_postgres(environ.get("DATABASE_URL") or None, state_dir / "postgres")
        handles.append(postgres)
        redis = ensure_redis(environ.get("REDIS_URL") or None, state_dir / "redis")
        handles.append(redis)
        for handle in handles:
            if handle.process is not None:
                supervisor.adopt(handle.process)
        supervisor.check()

        databases = {s: create_database(postgres.url, f"caixa_{s}") for s in SERVICES}
        for service in SERVICES:
            env = _child_env(environ, DATABASE_URL=databases[service])
            supervisor.run(
                f"{service}-migrate", _module(service, "migrate"), env=env, timeout=MIGRATE_TIMEOUT
            )

        lancamentos = f"{LOOPBACK}:{ports.lancamentos}"
        egress = by_name["egress-dispatcher"]
        env = _child_env(
            environ,
            DATABASE_URL=databases["lancamentos"],
            GRPC_PORT=str(ports.lancamentos),
            # The dispatcher reaches consolidado only through its sidecar.
            CONSOLIDADO_TARGET=f"{LOOPBACK}:{egress.listen_port}",
        )
        ready = partial(grpc_serving, lancamentos)
        supervisor.start(
            "lancamentos",
            _module("lancamentos", "serve"),
            env=env,
            ready=ready,
            tier=mesh.LANCAMENTOS_TIER,
        )
        for port in ports.consolidado:
            env = _child_env(
                environ,
                DATABASE_URL=databases["consolidado"],
                REDIS_URL=redis.url,
                GRPC_PORT=str(port),
                LANCAMENTOS_TARGET=lancamentos,
            )
            ready = partial(grpc_serving, f"{LOOPBACK}:{port}")
            name = f"consolidado-{port}"
            supervisor.start(
                name,
                _module("consolidado", "serve"),
                env=env,
                ready=ready,
                tier=mesh.CONSOLIDADO_TIER,
            )
        supervisor.wait_ready(READY_TIMEOUT)

        config_dir = state_dir / "envoy"
        for proxy in proxies:
            supervisor.start(
                proxy.name,
                envoy.envoy_argv(mesh.write(proxy, config_dir)),
                env=dict(environ),
                ready=partial(envoy.envoy_ready, proxy.admin_port),
                tier=mesh.tier_of(proxy.name),
            )
        supervisor.wait_ready(READY_TIMEOUT)

        gateway = by_name["gateway"]
        print(banner(ports, gateway, postgres, redis, supervisor.log_dir), flush=True)
        supervisor.watch()
        return 0
    except StopRequested:
        return 0
    except (StartupError, ChildExited) as error:
        log.error("%s", error)
        return 1
    finally:
        supervisor.stop()
        for handle in reversed(handles):
            handle.stop()
        log.info("everything stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repo", type=Path, default=Path("."), help="the Caixa checkout (default: this folder)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        ports = Ports.from_env(os.environ)
    except ValueError as error:
        log.error("%s", error)
        sys.exit(2)
    sources = mesh.MeshSources(args.repo.resolve())
    sys.exit(run(sources.root / ".devstack", sources, ports, os.environ))


if __name__ == "__main__":
    main()
