"""`make run`: the whole Caixa stack on this machine.

1. PostgreSQL and Redis: `DATABASE_URL` / `REDIS_URL` when set and reachable,
   else real embedded servers with their files in `./.devstack/`.
2. Databases `caixa_lancamentos`, `caixa_consolidado` and `caixa_fiscal`
   (`--database-prefix`), migrated.
3. The stack of helm/caixa/values.yaml + values-local.yaml, which sets every
   port: lancamentos, the consolidado and fiscal replicas, the gateway (gRPC and
   REST), an inbound sidecar per replica, and the egress sidecars through which
   lancamentos' dispatcher reaches consolidado and fiscal's reaches lancamentos
   (see tooling.stack).
While it is up, `<state dir>/stack.json` tells the operations commands
(reconcile, rebuild, parked) where it is (see services.platform.local_stack).
Ctrl-C or SIGTERM stops everything in dependency order (see tooling.stack.supervised).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from caixa.cli.dates import DEFAULT_TIMEZONE as CLI_DEFAULT_TIMEZONE
from caixa.cli.traces import DEFAULT_TRACE_URL
from caixa.client.targets import DEFAULT_LANCAMENTOS_TARGET
from mesh.cli import add_set_option
from mesh.values import PolicyError
from services.platform import local_stack
from services.platform.settings import ServiceSettings
from tooling.devstack import control, prometheus
from tooling.devstack.auth import CONSOLIDADO, DISPATCHER, FISCAL, StackAuth, gateway_jwt_sets
from tooling.devstack.health import http_ok
from tooling.devstack.infra import ServerHandle, create_database, ensure_postgres, ensure_redis
from tooling.devstack.mtls import mtls_sets
from tooling.devstack.processes import StartupError, port_open
from tooling.devstack.supervisor import ChildExited, StopRequested, Supervisor
from tooling.devstack.urls import redact
from tooling.stack.bring_up import bring_up
from tooling.stack.envoys import NotHealthy
from tooling.stack.plan import ServicePlan, StackPlan
from tooling.stack.sources import MeshSources
from tooling.stack.supervised import TRACES_TIER, Supervised, service_argv

log = logging.getLogger("tooling.devstack")

SERVICES = ("lancamentos", "consolidado", "fiscal")
USER_SCOPES = "lancamentos:write lancamentos:read consolidado:read fiscal:write fiscal:read"
MIGRATE_TIMEOUT = 120.0
READY_TIMEOUT = 60.0
# Where `caixa` connects without flags.
CLI_DEFAULT_GATEWAY_PORT = urlsplit(f"//{DEFAULT_LANCAMENTOS_TARGET}").port


def port_sets(env: Mapping[str, str]) -> list[str]:
    """`--set` lines for `LANCAMENTOS_PORT` and `CONSOLIDADO_PORTS` ("50052,50053"),
    shortcuts for the app ports of values-local.yaml."""
    sets: list[str] = []
    replicas = "mesh.localTopology.services.{}.replicas[{}].appPort={}"
    if env.get("LANCAMENTOS_PORT"):
        sets.append(replicas.format("lancamentos", 0, _port(env["LANCAMENTOS_PORT"])))
    if env.get("CONSOLIDADO_PORTS"):
        ports = [_port(p) for p in env["CONSOLIDADO_PORTS"].split(",") if p.strip()]
        if not ports:
            raise ValueError("CONSOLIDADO_PORTS names no port")
        sets += [replicas.format("consolidado", i, port) for i, port in enumerate(ports)]
    return sets


def _port(raw: str) -> int:
    port = int(raw.strip())
    if not 0 < port < 65536:
        raise ValueError(f"invalid port {raw!r}")
    return port


def _database_prefix(raw: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", raw):
        raise argparse.ArgumentTypeError(f"{raw!r} is not a database name prefix ([a-z][a-z0-9_]*)")
    return raw


def _child_env(base: Mapping[str, str], **values: str) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(values)
    return env


def _check_ports_free(plan: StackPlan) -> None:
    for port in plan.ports:
        if port_open(plan.lancamentos.host, port, timeout=0.3):
            raise StartupError(
                f"port {port} is already in use (another `make run`?); choose others "
                "in helm/caixa/values-local.yaml, with --set, or with LANCAMENTOS_PORT / "
                "CONSOLIDADO_PORTS"
            )


def _script(name: str) -> str:
    """A console script of this venv, as a path the user can paste."""
    script = Path(sys.executable).parent / name
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


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


def business_zone(environ: Mapping[str, str]) -> str:
    """The zone the services book in: what 'today' means for a value date."""
    default = ServiceSettings.model_fields["business_timezone"].default
    return environ.get("BUSINESS_TIMEZONE") or str(default)


def banner(
    plan: StackPlan,
    postgres: ServerHandle,
    redis: ServerHandle,
    log_dir: Path,
    *,
    zone: str,
    ops_env: str = "",
    prometheus_url: str | None = None,
) -> str:
    def where(handle: ServerHandle) -> str:
        kind = f"embedded, files in {handle.data_dir}" if handle.embedded else "external"
        return f"{redact(handle.url)}  ({kind})"

    gateway = plan.gateway
    cli = _cli_command()
    ops = ops_env + _script("caixa-consolidado")
    front = f"{plan.lancamentos.host}:{gateway.listen_port}"
    if gateway.listen_port != CLI_DEFAULT_GATEWAY_PORT:
        cli += f" --lancamentos-target {front} --consolidado-target {front}"
    if zone != CLI_DEFAULT_TIMEZONE:
        cli += f" --timezone {zone}"
    rest = f"http://localhost:{gateway.listen_port}"
    replicas = ", ".join(replica.address for replica in plan.consolidado)
    fiscal = ", ".join(replica.address for replica in plan.fiscal)
    return "\n".join(
        [
            "",
            f"Caixa is running (business days in {zone}).",
            f"  gateway      {front}  (gRPC and REST/JSON; Envoy admin :{gateway.admin_port})",
            f"  lancamentos  {plan.lancamentos.address}  (direct, behind its sidecar)",
            f"  consolidado  {replicas}",
            f"  fiscal       {fiscal}",
            f"  PostgreSQL   {where(postgres)}",
            f"  Redis        {where(redis)}",
            f"  logs         {log_dir}/*.log",
            _metrics_line(plan, prometheus_url),
            "Every call needs a token; one for merchant m1, signed with this stack's dev key:",
            f"  export CAIXA_TOKEN=$({ops_env}{_cli_command()} token --merchant m1 "
            f"--scope '{USER_SCOPES}')",
            "Try:",
            f"  {cli} create --merchant m1 --kind credit --amount 10.50",
            f"  {cli} balance --merchant m1",
            f"  curl -s -X POST {rest}/v1/fiscal/documents:validate \\",
            '       -H "authorization: Bearer $CAIXA_TOKEN" \\',
            "       -H 'content-type: application/xml' --data-binary @nfe.xml",
            f"  curl -s -X POST {rest}/v1/merchants/m1/lancamentos \\",
            '       -H "authorization: Bearer $CAIXA_TOKEN" \\',
            "       -H 'content-type: application/json' \\",
            """       -d '{"kind":"KIND_DEBIT","amount_cents":250,"request_id":"r-1"}'""",
            # The business day, not the terminal's: right in any TZ.
            '  curl -s -H "authorization: Bearer $CAIXA_TOKEN" \\',
            f"       {rest}/v1/merchants/m1/daily-balances/$(TZ={zone} date +%F)",
            *_trace_lines(plan, _cli_command()),
            # No flags: they find this stack by its stack.json (write_stack_file).
            "Operations (exit 0 ok, 1 drift, 2 invalid, 3 unreachable):",
            f"  {ops} reconcile --merchant m1 --from $(TZ={zone} date +%F) "
            f"--to $(TZ={zone} date +%F)",
            f"  {ops} rebuild --merchant m1",
            f"  {ops_env}{_script('caixa-lancamentos')} parked",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def _start_prometheus(
    supervisor: Supervisor, plan: StackPlan, state_dir: Path, environ: Mapping[str, str]
) -> str | None:
    """Prometheus' URL once it serves, or None: none installed, or its port taken
    (a Prometheus of your own, say), which is no reason to refuse to start."""
    found = prometheus.binary()
    if plan.prometheus_port is None or found is None:
        return None
    host, port = plan.lancamentos.host, plan.prometheus_port
    if port_open(host, port, timeout=0.3):
        log.warning("port %d is taken: not starting Prometheus", port)
        return None
    url = f"http://{host}:{port}"
    supervisor.start(
        "prometheus",
        prometheus.argv(plan, state_dir, found),
        env=dict(environ),
        ready=partial(http_ok, f"{url}/-/ready"),
        tier=TRACES_TIER,
    )
    try:
        supervisor.wait_ready(READY_TIMEOUT)
    except (ChildExited, StartupError) as error:
        # Optional: the stack serves without it; its log says why it would not.
        log.warning("Prometheus did not start (%s); going on without it", error)
        supervisor.stop_child("prometheus")
        return None
    return url


def _metrics_line(plan: StackPlan, prometheus_url: str | None) -> str:
    if prometheus_url is not None:
        return (
            f"  metrics      {prometheus_url.replace('127.0.0.1', 'localhost')}  "
            "(Prometheus: every service's /metrics, every Envoy's stats)"
        )
    ports = ", ".join(f":{s.env['METRICS_PORT']}" for s in plan.services if s.metrics_address)
    hint = (
        f"; `apt-get install prometheus` and make run starts one on :{plan.prometheus_port}"
        if plan.prometheus_port is not None
        else ""
    )
    return f"  metrics      /metrics on {ports}, Envoys' /stats/prometheus on their admin{hint}"


def _trace_lines(plan: StackPlan, cli: str) -> list[str]:
    if plan.traces is None:
        return []
    url = f"http://localhost:{plan.traces.query_port}"
    flag = "" if url == DEFAULT_TRACE_URL else f" --url {url}"
    return [
        "Traces (every gateway answer names its trace in the x-trace-id header):",
        f"  {cli} trace{flag} --last     the newest request, hop by hop",
        f"  {cli} trace{flag} ID         one trace;  {cli} trace{flag}  lists them",
    ]


def run(
    state_dir: Path, plan: StackPlan, environ: Mapping[str, str], *, database_prefix: str = "caixa"
) -> int:
    """Brings the stack up and keeps it up until a signal; the exit status."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as lock:
        try:
            lock.enter_context(launcher_lock(state_dir))
        except AlreadyRunning as error:
            log.error("%s", error)
            return 1
        return _run(state_dir, plan, environ, database_prefix)


class AlreadyRunning(Exception):
    """Another launcher holds this state folder."""


@contextlib.contextmanager
def launcher_lock(state_dir: Path) -> Iterator[None]:
    """One launcher per state folder: a second one would take the first one's
    processes for leftovers and stop them."""
    path = state_dir / "devstack.lock"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise AlreadyRunning(
                f"another Caixa stack is running from {state_dir} (launcher pid {holder}); "
                "it was left alone. Stop it with Ctrl-C, or give this one its own "
                "--state-dir and ports (--set)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def _run(state_dir: Path, plan: StackPlan, environ: Mapping[str, str], database_prefix: str) -> int:
    supervisor = Supervisor(state_dir / "logs")
    supervisor.install_signal_handlers()
    handles: list[ServerHandle] = []
    control_dir = state_dir / "control"
    for stale in control_dir.glob("*"):
        stale.unlink()
    # Under the lock, so any stack file here is a killed launcher's.
    local_stack.remove_stack(state_dir)
    try:
        supervisor.stop_leftovers()
        _check_ports_free(plan)
        postgres = ensure_postgres(environ.get("DATABASE_URL") or None, state_dir / "postgres")
        handles.append(postgres)
        redis = ensure_redis(environ.get("REDIS_URL") or None, state_dir / "redis")
        handles.append(redis)
        for handle in handles:
            if handle.process is not None:
                supervisor.adopt(handle.process)
        supervisor.check()

        databases = {s: create_database(postgres.url, f"{database_prefix}_{s}") for s in SERVICES}
        for service in SERVICES:
            env = _child_env(environ, DATABASE_URL=databases[service])
            supervisor.run(
                f"{service}-migrate",
                service_argv(service, "migrate"),
                env=env,
                timeout=MIGRATE_TIMEOUT,
            )

        auth = StackAuth.prepare(state_dir)

        def env_of(service: ServicePlan) -> dict[str, str]:
            if service.service == "lancamentos":
                # Its dispatcher calls ingest as the dispatcher workload.
                return _child_env(
                    environ, DATABASE_URL=databases["lancamentos"], **auth.env(DISPATCHER)
                )
            if service.service == "fiscal":
                return _child_env(environ, DATABASE_URL=databases["fiscal"], **auth.env(FISCAL))
            return _child_env(
                environ,
                DATABASE_URL=databases["consolidado"],
                REDIS_URL=redis.url,
                **auth.env(CONSOLIDADO),
            )

        launcher = Supervised(
            supervisor,
            state_dir / "envoy",
            env_of,
            envoy_env=dict(environ),
            ready_timeout=READY_TIMEOUT,
        )
        asyncio.run(bring_up(plan, launcher, within=READY_TIMEOUT))
        metrics = _start_prometheus(supervisor, plan, state_dir, environ)
        zone = business_zone(environ)
        write_stack_file(state_dir, plan, databases, redis.url, auth)
        ops_env = stack_dir_env(state_dir, environ)
        print(
            banner(
                plan,
                postgres,
                redis,
                supervisor.log_dir,
                zone=zone,
                ops_env=ops_env,
                prometheus_url=metrics,
            ),
            flush=True,
        )
        supervisor.watch(control_dir=control_dir)
        return 0
    except StopRequested:
        return 0
    except (StartupError, ChildExited, NotHealthy) as error:
        log.error("%s", error)
        return 1
    finally:
        # First: a command started from now on would find a stack going away.
        local_stack.remove_stack(state_dir)
        supervisor.stop()
        for handle in reversed(handles):
            handle.stop()
        log.info("everything stopped")


def write_stack_file(
    state_dir: Path,
    plan: StackPlan,
    databases: Mapping[str, str],
    redis_url: str,
    auth: StackAuth,
) -> None:
    """What the operations commands (reconcile, rebuild, parked) need to act on
    this stack without flags; see services.platform.local_stack. reconcile and
    rebuild read lancamentos' feed as consolidado does, with its identity."""
    local_stack.write_stack(
        state_dir,
        {
            "lancamentos": {"DATABASE_URL": databases["lancamentos"]},
            "consolidado": {
                "DATABASE_URL": databases["consolidado"],
                "LANCAMENTOS_TARGET": plan.lancamentos.address,
                "REDIS_URL": redis_url,
                "WORKLOAD_TOKEN_FILE": str(auth.token_file(CONSOLIDADO)),
            },
        },
    )


def stack_dir_env(state_dir: Path, environ: Mapping[str, str]) -> str:
    """Nothing when the operations commands, run from here, find this stack by
    themselves; else the `CAIXA_STACK_DIR=...` that points them at it (a
    --state-dir not named .devstack, or outside this folder and its parents)."""
    try:
        found = local_stack.discover(environ).stack
    except local_stack.MalformedStackFile:
        found = None
    if found is not None and found.state_dir.resolve() == state_dir.resolve():
        return ""
    return f"{local_stack.STACK_DIR_ENV}={shlex.quote(str(state_dir))} "


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repo", type=Path, default=Path("."), help="the Caixa checkout (default: this folder)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="logs, Envoy configs, embedded databases (default: <repo>/.devstack)",
    )
    parser.add_argument(
        "--database-prefix",
        default="caixa",
        type=_database_prefix,
        help="the databases are <prefix>_lancamentos, _consolidado and _fiscal (default: caixa)",
    )
    add_set_option(parser)
    actions = parser.add_subparsers(
        dest="action", metavar="ACTION", help="act on one process of the running stack"
    )
    for action, text in [
        ("stop", "stop a process and keep it stopped"),
        ("start", "start a stopped process again"),
        ("kill", "SIGKILL a process; the supervisor restarts it, as after a crash"),
    ]:
        sub = actions.add_parser(action, help=text)
        sub.add_argument("name", help="e.g. lancamentos, consolidado-50052, gateway")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    sources = MeshSources(args.repo.resolve())
    state_dir = args.state_dir.resolve() if args.state_dir else sources.root / ".devstack"
    try:
        plan = StackPlan.render(
            sources,
            [
                *gateway_jwt_sets(state_dir),
                *mtls_sets(state_dir),
                *port_sets(os.environ),
                *args.sets,
            ],
        )
    except (ValueError, PolicyError) as error:
        log.error("%s", error)
        sys.exit(2)
    except FileNotFoundError as error:
        log.error("%s is missing: run `make proto` first", error.filename)
        sys.exit(2)
    if args.action:
        try:
            answer = control.send(state_dir / "control", args.name, args.action)
        except TimeoutError as error:
            print(f"caixa-devstack: {error}", file=sys.stderr)
            sys.exit(1)
        print(answer)
        sys.exit(1 if answer.startswith("error:") else 0)
    sys.exit(run(state_dir, plan, os.environ, database_prefix=args.database_prefix))


if __name__ == "__main__":
    main()
