"""`python -m bench.metrics_run`: the key metrics over a scripted incident,
plotted from the services' own Prometheus-format scrapes.

A real `make run` stack (caixa-devstack on free ports) takes a steady stream of
creates through the gateway. Part-way, both consolidado replicas are stopped
(`caixa-devstack stop`), then started again; near the end one entry that
consolidado refuses for good (a CHECK constraint on its table, as
tests/services/test_outbox_parking.py sets) is parked. Every second each
service's /metrics is scraped; the series go to a JSON file and an SVG picture
(`docs/metrics-run.svg`): creates acknowledged, their p99, the outbox backlog
and its oldest entry's age, the consolidation lag, parked entries.

Bounded in time (`--seconds`) and rate (`--rate`), loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from lancamentos.v1 import lancamentos_pb2 as lpb
from prometheus_client.parser import text_string_to_metric_families

from bench.svg_chart import Panel, chart
from caixa.cli.dev_tokens import dev_key, mint
from services.platform.database import asyncpg_dsn
from tooling.devstack import control
from tooling.devstack.supervisor import Supervisor
from tooling.stack.plan import StackPlan, free_port_sets
from tooling.stack.sources import MeshSources

CREATE = "/lancamentos.v1.LancamentosService/CreateLancamento"
POISON = "refused-merchant"
DAY = "2026-06-10"


@dataclass(frozen=True)
class Script:
    """When things happen, in seconds from the start of the load."""

    seconds: float
    outage_from: float
    outage_to: float
    poison_at: float

    @classmethod
    def of(cls, seconds: float) -> Script:
        return cls(seconds, seconds * 0.2, seconds * 0.55, seconds * 0.75)


@dataclass
class Series:
    t: list[float] = field(default_factory=list)
    values: dict[str, list[float | None]] = field(default_factory=dict)

    def add(self, t: float, point: dict[str, float | None]) -> None:
        self.t.append(round(t, 2))
        for name, value in point.items():
            self.values.setdefault(name, []).append(value)


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One /metrics, as {(sample name, labels): value}; {} if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _value(scraped: Scrape, name: str, **labels: str) -> float | None:
    want = set(labels.items())
    found = [v for (n, ls), v in scraped.items() if n == name and want <= set(ls)]
    return sum(found) if found else None


def _buckets(scraped: Scrape, name: str, **labels: str) -> dict[float, float]:
    want = set(labels.items())
    out: dict[float, float] = {}
    for (n, ls), v in scraped.items():
        if n == f"{name}_bucket" and want <= set(ls):
            le = float(dict(ls)["le"])
            out[le] = out.get(le, 0.0) + v
    return out


def _increase(now: float | None, before: float | None) -> float | None:
    """A counter's increase; a restarted process counts from 0 (Prometheus' rule)."""
    if now is None:
        return None
    if before is None or now < before:
        return now
    return now - before


def quantile(q: float, now: dict[float, float], before: dict[float, float]) -> float | None:
    """histogram_quantile over the interval, per-bucket increases, linear within a bucket."""
    increases = {le: _increase(v, before.get(le)) or 0.0 for le, v in now.items()}
    bounds = sorted(increases)
    total = increases.get(float("inf"), 0.0)
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for le in bounds:
        if increases[le] >= rank:
            if le == float("inf"):
                return lower
            inside = increases[le] - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, increases[le]
    return None


async def drive(
    target: str, token: str, script: Script, rate: float, started: float
) -> dict[str, int]:
    """Open-loop creates at `rate` per second for the script's length; the poison
    entry at its time. Outcomes by code, as the client saw them."""
    outcomes: dict[str, int] = {}
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(CREATE, request_serializer=None, response_deserializer=None)

        async def one(request: lpb.CreateLancamentoRequest) -> None:
            try:
                await call(request.SerializeToString(), timeout=10, metadata=metadata)
                code = "OK"
            except grpc.aio.AioRpcError as error:
                code = error.code().name
            outcomes[code] = outcomes.get(code, 0) + 1

        pending: set[asyncio.Task[None]] = set()
        poisoned = False
        n = 0
        while (elapsed := time.monotonic() - started) < script.seconds:
            merchant = f"m{n % 50}"
            if not poisoned and elapsed >= script.poison_at:
                merchant, poisoned = POISON, True
            request = lpb.CreateLancamentoRequest(
                merchant_id=merchant,
                kind=lpb.KIND_CREDIT,
                amount_cents=100 + n % 900,
                value_date=DAY,
                request_id=f"run.{n}",
            )
            task = asyncio.create_task(one(request))
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        await asyncio.gather(*pending)
    return outcomes


def observe(plan: StackPlan, script: Script, started: float, series: Series) -> None:
    """Scrapes every second until the script ends."""
    lancamentos = plan.lancamentos.metrics_address
    replicas = [r.metrics_address for r in plan.consolidado]
    assert lancamentos is not None and all(replicas)
    before_l: Scrape = {}
    before_c: list[Scrape] = [{} for _ in replicas]
    while (t := time.monotonic() - started) < script.seconds:
        now_l = scrape(lancamentos)
        now_c = [scrape(str(r)) for r in replicas]
        ok = _increase(
            _value(
                now_l, "grpc_server_handled_total", grpc_method="CreateLancamento", grpc_code="OK"
            ),
            _value(
                before_l,
                "grpc_server_handled_total",
                grpc_method="CreateLancamento",
                grpc_code="OK",
            ),
        )
        latency = "grpc_server_handling_seconds"
        p99 = quantile(
            0.99,
            _buckets(now_l, latency, grpc_method="CreateLancamento"),
            _buckets(before_l, latency, grpc_method="CreateLancamento"),
        )
        # Each replica's increase on its own (a restart resets its counters, a
        # missed scrape is no reset), then summed, as rate() then sum() does.
        lag_increase: dict[float, float] = {}
        for now, before in zip(now_c, before_c, strict=True):
            if not now or not before:
                continue
            earlier = _buckets(before, "caixa_consolidation_lag_seconds")
            for le, v in _buckets(now, "caixa_consolidation_lag_seconds").items():
                lag_increase[le] = lag_increase.get(le, 0.0) + (
                    _increase(v, earlier.get(le)) or 0.0
                )
        series.add(
            t,
            {
                "creates_per_second": ok if before_l else None,
                "create_p99_ms": p99 * 1000 if p99 is not None and before_l else None,
                "outbox_backlog": _value(now_l, "caixa_outbox_backlog"),
                "outbox_oldest_age_seconds": _value(now_l, "caixa_outbox_oldest_age_seconds"),
                "consolidation_lag_p99_seconds": quantile(0.99, lag_increase, {}),
                "outbox_parked": _value(now_l, "caixa_outbox_parked"),
                "consolidado_replicas_up": float(sum(1 for c in now_c if c)),
            },
        )
        before_l = now_l
        # A replica that did not answer keeps its last scrape, to count from.
        before_c = [now or before for now, before in zip(now_c, before_c, strict=True)]
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started - t)))


@contextlib.contextmanager
def devstack(
    sources: MeshSources, workdir: Path, environ: dict[str, str]
) -> Iterator[tuple[StackPlan, Path]]:
    sets = free_port_sets(sources)
    plan = StackPlan.render(sources, sets)
    state_dir = workdir / ".devstack"
    argv = [sys.executable, "-m", "tooling.devstack", "--repo", str(sources.root)]
    argv += ["--state-dir", str(state_dir), "--database-prefix", f"run_{uuid.uuid4().hex[:8]}"]
    argv += [arg for s in sets for arg in ("--set", s)]
    log = (workdir / "devstack.log").open("w")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=environ, text=True)
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C stops everything" not in (workdir / "devstack.log").read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (workdir / "devstack.log").read_text()[-4000:]
                raise RuntimeError(f"the devstack did not start; its log ends:\n{tail}")
            time.sleep(0.3)
        yield plan, state_dir
    finally:
        process.terminate()
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
        Supervisor(state_dir / "logs").stop_leftovers()
        log.close()


async def refuse(database_url: str, refused: bool) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        if refused:
            check = f"CHECK (merchant_id <> '{POISON}')"
            await conn.execute(f"ALTER TABLE daily_totals ADD CONSTRAINT bench_refuse {check}")
        else:
            await conn.execute("ALTER TABLE daily_totals DROP CONSTRAINT IF EXISTS bench_refuse")
    finally:
        await conn.close()


def run(sources: MeshSources, workdir: Path, *, seconds: float, rate: float) -> dict[str, Any]:
    script = Script.of(seconds)
    environ = {**os.environ, "OUTBOX_METRICS_SECONDS": "1", "LOG_LEVEL": "WARNING"}
    series = Series()
    events: list[dict[str, Any]] = []
    with devstack(sources, workdir, environ) as (plan, state_dir):
        stack = json.loads((state_dir / "stack.json").read_text())
        consolidado_db = stack["services"]["consolidado"]["DATABASE_URL"]
        asyncio.run(refuse(consolidado_db, True))
        token = mint(
            dev_key(state_dir / "auth"),
            subject="metrics-run",
            merchants=["*"],
            scopes=["lancamentos:write"],
            ttl_seconds=3600,
        )
        gateway = f"{plan.lancamentos.host}:{plan.gateway.listen_port}"
        started = time.monotonic()
        watcher = threading.Thread(target=observe, args=(plan, script, started, series))
        watcher.start()

        def at(when: float, action: str) -> None:
            time.sleep(max(0.0, started + when - time.monotonic()))
            for replica in plan.consolidado:
                # What `caixa-devstack stop|start NAME` sends.
                answer = control.send(state_dir / "control", replica.name, action)
                if answer.startswith("error"):
                    raise RuntimeError(answer)
            events.append(
                {"t": round(time.monotonic() - started, 2), "event": f"consolidado {action}"}
            )

        def outage_script() -> None:
            at(script.outage_from, "stop")
            at(script.outage_to, "start")

        outage = threading.Thread(target=outage_script)
        outage.start()
        outcomes = asyncio.run(drive(gateway, token, script, rate, started))
        outage.join()
        watcher.join()
        asyncio.run(refuse(consolidado_db, False))
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": seconds,
        "rate": rate,
        "script": {
            "consolidado_stopped_at": script.outage_from,
            "consolidado_started_at": script.outage_to,
            "refused_entry_at": script.poison_at,
        },
        "events": events,
        "client_outcomes": outcomes,
        "t": series.t,
        "series": series.values,
    }


def picture(report: dict[str, Any]) -> str:
    s = report["series"]
    script = report["script"]
    # When the replicas were down, as done (each stop waits for its answer).
    when = {e["event"]: e["t"] for e in report["events"]}
    shade = (when["consolidado stop"], when["consolidado start"])
    panels = [
        Panel("creates acknowledged per second", s["creates_per_second"], "/s"),
        Panel("create p99 (ms)", s["create_p99_ms"], "ms"),
        Panel("outbox backlog (entries)", s["outbox_backlog"], ""),
        Panel("oldest undelivered entry (s)", s["outbox_oldest_age_seconds"], "s"),
        Panel(
            "consolidation lag p99 (s), interpolated within buckets as Prometheus does",
            s["consolidation_lag_p99_seconds"],
            "s",
        ),
        Panel("parked entries", s["outbox_parked"], ""),
    ]
    title = f"Caixa under a scripted incident ({report['date'][:10]}, make run's stack)"
    subtitle = (
        f"{report['rate']:g} creates/s; both consolidado replicas down "
        f"{shade[0]:.0f}–{shade[1]:.0f} s (shaded); a refused entry at "
        f"{script['refused_entry_at']:g} s; every /metrics scraped each second"
    )
    return chart(title, report["t"], panels, subtitle=subtitle, shade=shade)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=100.0, help="creates per second")
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--out", type=Path, default=Path("bench/results/metrics-run.json"))
    parser.add_argument("--svg", type=Path, default=Path("docs/metrics-run.svg"))
    args = parser.parse_args()
    if not 0 < args.seconds <= 600 or not 0 < args.rate <= 2000:
        parser.error("--seconds within (0, 600], --rate within (0, 2000]")
    with tempfile.TemporaryDirectory(prefix="caixa-metrics-run-") as tmp:
        report = run(
            MeshSources(args.repo.resolve()), Path(tmp), seconds=args.seconds, rate=args.rate
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    args.svg.parent.mkdir(parents=True, exist_ok=True)
    args.svg.write_text(picture(report))
    print(json.dumps({k: v for k, v in report.items() if k not in ("t", "series")}, indent=1))


if __name__ == "__main__":
    main()
