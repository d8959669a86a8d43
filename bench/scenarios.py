"""The measured scenarios. Each returns a row for the results table; successes
are counted by grpc-status from the services' own metrics."""

from __future__ import annotations

import concurrent.futures
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from consolidado.v1 import consolidado_pb2 as cpb
from lancamentos.v1 import lancamentos_pb2 as lpb

from bench import h2load, metrics, wrk
from bench.grpc_bodies import write_body
from bench.stack import Stack, sql_scalar
from bench.stats import summarize

FIRST_DAY = date(2025, 1, 1)
CREATE = "/lancamentos.v1.LancamentosService/CreateLancamento"
IMPORT = "/lancamentos.v1.LancamentosService/ImportLancamentos"
BALANCE = "/consolidado.v1.ConsolidadoService/GetDailyBalance"


@dataclass(frozen=True)
class Scale:
    name: str
    merchants: int
    days: int
    rows_per_import: int
    seconds: float
    connections: int


SCALES = {
    "smoke": Scale("smoke", merchants=5, days=8, rows_per_import=20, seconds=1, connections=4),
    "full": Scale(
        "full", merchants=1000, days=365, rows_per_import=5000, seconds=10, connections=16
    ),
}


def _row(name: str, **values: Any) -> dict[str, Any]:
    return {"scenario": name, **values}


def _outcome(stack: Stack, method: str, action: Any) -> tuple[Any, dict[str, int]]:
    before = metrics.handled_by_code(stack.metrics, method)
    result = action()
    return result, metrics.delta(metrics.handled_by_code(stack.metrics, method), before)


def error_pct(codes: dict[str, int]) -> float:
    """Failed calls among those the load generator let finish: a timed run's
    end cancels the calls still in flight (CANCELLED, kept in grpc_codes),
    which is the generator stopping, not the service failing."""
    total = sum(n for code, n in codes.items() if code != "CANCELLED")
    return round(100 * (total - codes.get("OK", 0)) / total, 3) if total else 100.0


def seed_import(stack: Stack, scale: Scale, workdir: Path) -> dict[str, Any]:
    """ImportLancamentos of one entry per merchant and day, in concurrent calls."""
    assert stack.lancamentos is not None
    bodies: list[Path] = []
    rows: list[lpb.CreateLancamentoRequest] = []
    for m in range(scale.merchants):
        for d in range(scale.days):
            rows.append(
                lpb.CreateLancamentoRequest(
                    merchant_id=f"m{m}",
                    kind=lpb.KIND_DEBIT if (m + d) % 4 == 0 else lpb.KIND_CREDIT,
                    amount_cents=1000 + (m * 31 + d * 17) % 50000,
                    value_date=(FIRST_DAY + timedelta(days=d)).isoformat(),
                    request_id=f"seed-{stack.run_id}-{m}-{d}",
                )
            )
            if len(rows) == scale.rows_per_import:
                bodies.append(import_body(workdir / f"import-{len(bodies)}.bin", rows))
                rows = []
    if rows:
        bodies.append(import_body(workdir / f"import-{len(bodies)}.bin", rows))
    url = f"http://{stack.lancamentos.address}{IMPORT}"
    total = scale.merchants * scale.days

    def run_all() -> float:
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            list(
                pool.map(
                    lambda body: h2load.run(url, body, requests=1, clients=1, streams=1),
                    bodies,
                )
            )
        return time.perf_counter() - started

    seconds, codes = _outcome(stack, IMPORT, run_all)
    stored = int(sql_scalar(stack.lancamentos_db, "SELECT count(*) FROM lancamentos"))  # type: ignore[call-overload]
    return _row(
        "ImportLancamentos",
        tool="h2load (1 call per 5k-row body, 2 at a time)",
        calls=len(bodies),
        entries=total,
        entries_stored=stored,
        entries_per_second=round(total / seconds, 1),
        seconds=round(seconds, 2),
        grpc_codes=codes,
        error_pct=error_pct(codes),
    )


def import_body(path: Path, rows: list[lpb.CreateLancamentoRequest]) -> Path:
    """One ImportLancamentos call: its rows in stream messages of 500, as the client sends."""
    messages = [
        lpb.ImportLancamentosRequest(lancamentos=rows[i : i + 500])
        for i in range(0, len(rows), 500)
    ]
    return write_body(path, messages)


def drain_outbox(stack: Stack, within: float = 900) -> dict[str, Any]:
    """Consolidation throughput: time until the seeded backlog is applied."""
    started = time.perf_counter()
    backlog = int(sql_scalar(stack.lancamentos_db, "SELECT count(*) FROM outbox"))  # type: ignore[call-overload]
    while int(sql_scalar(stack.lancamentos_db, "SELECT count(*) FROM outbox")) > 0:  # type: ignore[call-overload]
        if time.perf_counter() - started > within:
            raise RuntimeError("outbox did not drain")
        time.sleep(0.25)
    seconds = time.perf_counter() - started
    return _row(
        "outbox drain (seeded backlog)",
        backlog=backlog,
        seconds=round(seconds, 2),
        entries_per_second=round(backlog / seconds, 1) if seconds else None,
    )


def balance_warm(stack: Stack, scale: Scale, workdir: Path) -> dict[str, Any]:
    """Same merchant and day on both replicas at once: every read a cache hit."""
    day = (FIRST_DAY + timedelta(days=scale.days // 2)).isoformat()
    body = write_body(
        workdir / "balance.bin", [cpb.GetDailyBalanceRequest(merchant_id="m1", date=day)]
    )

    def run_both() -> list[h2load.H2loadResult]:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            return list(
                pool.map(
                    lambda service: h2load.run(
                        f"http://{service.address}{BALANCE}",
                        body,
                        requests=0,
                        clients=scale.connections // 8 or 1,
                        streams=8,
                        duration=scale.seconds,
                    ),
                    stack.consolidado,
                )
            )

    results, codes = _outcome(stack, BALANCE, run_both)
    seconds = max(r.seconds for r in results) or scale.seconds
    done = sum(r.requests_done for r in results)
    latency = _merge(results)
    return _row(
        "GetDailyBalance warm (direct, 2 replicas)",
        tool="h2load",
        rps=round(codes.get("OK", 0) / seconds, 1),
        requests=done,
        http_2xx=sum(r.http_2xx for r in results),
        grpc_codes=codes,
        error_pct=error_pct(codes),
        **latency,
    )


def balance_warm_gateway(stack: Stack, scale: Scale, workdir: Path) -> dict[str, Any]:
    """The same warm read as gRPC through the gateway, which spreads it over both
    replicas through their inbound sidecars: two Envoy hops per request."""
    day = (FIRST_DAY + timedelta(days=scale.days // 2)).isoformat()
    body = write_body(
        workdir / "balance-gw.bin", [cpb.GetDailyBalanceRequest(merchant_id="m1", date=day)]
    )
    result, codes = _outcome(
        stack,
        BALANCE,
        lambda: h2load.run(
            f"http://127.0.0.1:{stack.gateway_port}{BALANCE}",
            body,
            requests=0,
            clients=scale.connections // 8 or 1,
            streams=8,
            duration=scale.seconds,
        ),
    )
    seconds = result.seconds or scale.seconds
    return _row(
        "GetDailyBalance warm (gRPC through the gateway)",
        tool="h2load",
        rps=round(codes.get("OK", 0) / seconds, 1),
        requests=result.requests_done,
        http_2xx=result.http_2xx,
        grpc_codes=codes,
        error_pct=error_pct(codes),
        p50_ms=result.latency.p50_ms,
        p99_ms=result.latency.p99_ms,
    )


def _merge(results: list[h2load.H2loadResult]) -> dict[str, float]:
    # Percentiles of the union are not derivable from per-run summaries; report the worst.
    return {
        "p50_ms": max(r.latency.p50_ms for r in results),
        "p99_ms": max(r.latency.p99_ms for r in results),
    }


def balance_cold(stack: Stack, scale: Scale) -> dict[str, Any]:
    """Random merchant and day per request through the REST gateway: cache misses."""
    result, codes = _outcome(
        stack,
        BALANCE,
        lambda: wrk.run(
            f"http://127.0.0.1:{stack.gateway_port}",
            "balance.lua",
            seconds=scale.seconds,
            connections=scale.connections,
            env={"MERCHANTS": str(scale.merchants), "DAYS": str(scale.days)},
        ),
    )
    return _row(
        "GetDailyBalance cold (REST gateway, random keys)",
        tool="wrk",
        rps=round(codes.get("OK", 0) / result.seconds, 1),
        requests=result.requests,
        grpc_codes=codes,
        error_pct=error_pct(codes),
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
    )


def creates(
    stack: Stack, scale: Scale, *, paced_rps: int | None = None, expected_ms: float = 0
) -> dict[str, Any]:
    """CreateLancamento through the REST gateway, a fresh request_id per request.
    Paced: each connection waits between requests (wrk's delay()) so that
    connections / (delay + latency) is about `paced_rps`."""
    connections = scale.connections if paced_rps is None else 30
    env = {"MERCHANTS": str(scale.merchants), "DAYS": str(scale.days), "RUN": stack.run_id}
    if paced_rps is not None:
        env["DELAY_MS"] = str(max(1, int(connections * 1000 / paced_rps - expected_ms)))
        env["RUN"] = f"{stack.run_id}-paced"
    result, codes = _outcome(
        stack,
        CREATE,
        lambda: wrk.run(
            f"http://127.0.0.1:{stack.gateway_port}",
            "create.lua",
            seconds=scale.seconds,
            connections=connections,
            env=env,
        ),
    )
    name = "CreateLancamento (REST gateway, durable)"
    if paced_rps is not None:
        name = f"CreateLancamento paced at ~{paced_rps}/s"
    return _row(
        name,
        tool="wrk",
        rps=round(codes.get("OK", 0) / result.seconds, 1),
        requests=result.requests,
        grpc_codes=codes,
        error_pct=error_pct(codes),
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
    )


def consolidation_lag(stack: Stack, scale: Scale, rate: int, expected_ms: float) -> dict[str, Any]:
    """Creates at a steady rate, then the delay from commit to consolidation
    (consolidado's applied_at minus lancamentos' created_at, one clock)."""
    drain_outbox(stack, within=300)  # start with no backlog from earlier scenarios
    t0 = sql_scalar(stack.lancamentos_db, "SELECT now()")
    load = creates(stack, scale, paced_rps=rate, expected_ms=expected_ms)
    t1 = sql_scalar(stack.lancamentos_db, "SELECT now()")
    drain_outbox(stack, within=120)
    query = (
        "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
        "(ORDER BY extract(epoch FROM applied_at - created_at)) "
        f"FROM applied_lancamentos WHERE created_at BETWEEN '{t0}' AND '{t1}'"
    )
    found = sql_scalar(stack.consolidado_db, query)
    p50, p99 = found if isinstance(found, list) else (0.0, 0.0)
    return _row(
        f"consolidation lag at ~{rate} creates/s",
        offered_rps=load["rps"],
        create_p99_ms=load["p99_ms"],
        lag_p50_ms=round(float(p50) * 1000, 1),
        lag_p99_ms=round(float(p99) * 1000, 1),
        error_pct=load["error_pct"],
    )


def envoy_hop(stack: Stack, workdir: Path, requests: int) -> dict[str, Any]:
    """One request at a time, direct vs through the gateway: the hop's cost."""
    body = write_body(
        workdir / "hop.bin", [cpb.GetDailyBalanceRequest(merchant_id="m1", date="2025-01-02")]
    )
    direct = h2load.run(
        f"http://{stack.consolidado[0].address}{BALANCE}",
        body,
        requests=requests,
        clients=1,
        streams=1,
    )
    via = h2load.run(
        f"http://127.0.0.1:{stack.gateway_port}{BALANCE}",
        body,
        requests=requests,
        clients=1,
        streams=1,
    )
    return _row(
        "Envoy hops (GetDailyBalance, 1 in flight: gateway + inbound sidecar)",
        direct_p50_ms=direct.latency.p50_ms,
        gateway_p50_ms=via.latency.p50_ms,
        added_p50_ms=round(via.latency.p50_ms - direct.latency.p50_ms, 3),
        ratio=round(via.latency.p50_ms / direct.latency.p50_ms, 2)
        if direct.latency.p50_ms
        else None,
    )


__all__ = ["SCALES", "Scale", "summarize"]
