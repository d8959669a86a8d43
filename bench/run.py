"""`python -m bench.run [--scale smoke|full] [--only SCENARIO]`: starts the
stack, runs every scenario with native load generators, then write scaling
(1 vs 2 lancamentos processes, without the stack), writes
bench/results/<date>-<scale>.json (or <date>-<scenario>.json) and prints a
Markdown table. `--only` runs write-scaling, audit-cost, fiscal (its documents
per second), side-by-side (Caixa beside a FastAPI baseline) or a twin's cost
(auth-cost, tracing-cost, mtls-cost) alone."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench import fiscal, scenarios, side_by_side
from bench.audit_cost import audit_cost
from bench.baseline.server import Baseline
from bench.rest_check import rest_check_cost
from bench.stack import Stack, sql_scalar
from bench.twin_cost import auth_cost, mtls_cost, tracing_cost
from bench.write_scaling import write_scaling
from tooling.devstack.infra import ensure_postgres, ensure_redis
from tooling.stack.sources import MeshSources

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "h2load": subprocess.run(
            ["h2load", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


def run(
    scale: scenarios.Scale,
    sources: MeshSources,
    *,
    out: Path | None,
    only: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """`only`: one scenario alone: write-scaling (no stack), or a twin's cost."""
    with tempfile.TemporaryDirectory(prefix="caixa-bench-") as tmp:
        workdir = Path(tmp)
        postgres = ensure_postgres(os.environ.get("DATABASE_URL"), workdir / "pg")
        rows: list[dict[str, Any]] = []
        try:
            durability = {
                "synchronous_commit": sql_scalar(postgres.url, "SHOW synchronous_commit"),
                "synchronous_standby_names": sql_scalar(
                    postgres.url, "SHOW synchronous_standby_names"
                ),
                "fsync": sql_scalar(postgres.url, "SHOW fsync"),
                "postgresql": sql_scalar(postgres.url, "SHOW server_version"),
            }
            if only in TWINS:
                rows += _twins_alone(TWINS[only], scale, sources, postgres.url, workdir)
            elif only == "fiscal":
                rows += _fiscal_alone(scale, sources, postgres.url, workdir)
            elif only is None:
                rows += _stack_scenarios(scale, sources, postgres.url, workdir)
            if only in (None, "side-by-side"):
                rows += _side_by_side(scale, sources, postgres.url, workdir)
            if only in (None, "audit-cost"):
                rows.append(
                    audit_cost(
                        postgres.url,
                        scale.name,
                        merchants=scale.merchants,
                        days=scale.days,
                        workdir=workdir / "audit-cost",
                    )
                )
            if only in (None, "write-scaling"):
                # After the stack has stopped: only the lancamentos processes under test run.
                rows.append(
                    write_scaling(
                        postgres.url,
                        scale.name,
                        merchants=scale.merchants,
                        days=scale.days,
                        workdir=workdir / "write-scaling",
                    )
                )
        finally:
            postgres.stop()
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": scale.name,
        "merchants": scale.merchants,
        "days": scale.days,
        "machine": machine(),
        "durability": durability,
        **({"note": note} if note else {}),
        "results": rows,
    }
    if out is not None:
        out.write_text(json.dumps(report, indent=2) + "\n")
    return report


Twin = Callable[..., dict[str, Any]]
TWINS: dict[str, list[Twin]] = {
    "auth-cost": [auth_cost],
    # make run traces every request; the chart's Envoys start a trace for 1 %.
    "tracing-cost": [tracing_cost, partial(tracing_cost, sampling_percent=1.0)],
    "mtls-cost": [mtls_cost],
}


def _twin(twin: Twin, stack: Stack, workdir: Path, smoke: bool) -> dict[str, Any]:
    return twin(
        stack,
        workdir,
        seconds=1 if smoke else 10,
        connections=8 if smoke else 16,
        rounds=2 if smoke else 4,
    )


def _twins_alone(
    twins: list[Twin],
    scale: scenarios.Scale,
    sources: MeshSources,
    postgres_url: str,
    workdir: Path,
) -> list[dict[str, Any]]:
    redis = ensure_redis(os.environ.get("REDIS_URL"), workdir / "redis")
    stack = Stack(postgres_url, redis.url, workdir / "stack", sources)
    try:
        stack.start()
        smoke = scale.name == "smoke"
        return [_twin(t, stack, workdir / f"twin-{n}", smoke) for n, t in enumerate(twins)]
    finally:
        stack.stop()
        redis.stop()


def _fiscal_alone(
    scale: scenarios.Scale, sources: MeshSources, postgres_url: str, workdir: Path
) -> list[dict[str, Any]]:
    redis = ensure_redis(os.environ.get("REDIS_URL"), workdir / "redis")
    stack = Stack(postgres_url, redis.url, workdir / "stack", sources)
    try:
        stack.start()
        return fiscal.scenarios(stack, workdir / "fiscal", smoke=scale.name == "smoke")
    finally:
        stack.stop()
        redis.stop()


def _side_by_side(
    scale: scenarios.Scale, sources: MeshSources, postgres_url: str, workdir: Path
) -> list[dict[str, Any]]:
    """On a stack and a baseline of their own, seeded alike."""
    redis = ensure_redis(os.environ.get("REDIS_URL"), workdir / "redis-sbs")
    stack = Stack(postgres_url, redis.url, workdir / "sbs-stack", sources)
    baseline = Baseline(postgres_url, workdir / "sbs-baseline", stack.run_id)
    try:
        stack.start()
        baseline.start()
        size = side_by_side.SIZES[scale.name]
        # The full run's flame graphs are kept beside its results.
        flames = RESULTS / "flames" if scale.name == "full" else workdir / "flames"
        return side_by_side.side_by_side(stack, baseline, size, workdir / "side-by-side", flames)
    finally:
        baseline.stop()
        stack.stop()
        redis.stop()


def _stack_scenarios(
    scale: scenarios.Scale, sources: MeshSources, postgres_url: str, workdir: Path
) -> list[dict[str, Any]]:
    redis = ensure_redis(os.environ.get("REDIS_URL"), workdir / "redis")
    stack = Stack(postgres_url, redis.url, workdir / "stack", sources)
    rows: list[dict[str, Any]] = []
    try:
        stack.start()
        rows.append(scenarios.seed_import(stack, scale, workdir))
        rows.append(scenarios.drain_outbox(stack))
        rows.append(scenarios.balance_warm(stack, scale, workdir))
        rows.append(scenarios.balance_warm_gateway(stack, scale, workdir))
        rows.append(scenarios.balance_cold(stack, scale))
        rows.append(scenarios.creates(stack, scale))
        rows.append(
            scenarios.consolidation_lag(stack, scale, rate=500, expected_ms=rows[-1]["p50_ms"])
        )
        rows.append(
            scenarios.envoy_hop(stack, workdir, requests=200 if scale.name == "smoke" else 3000)
        )
        smoke = scale.name == "smoke"
        for name, twins in TWINS.items():
            rows += [_twin(t, stack, workdir / f"{name}-{n}", smoke) for n, t in enumerate(twins)]
        rows.append(
            rest_check_cost(
                stack,
                workdir / "rest-check",
                seconds=1 if smoke else 10,
                connections=8,
                rounds=1 if smoke else 4,
            )
        )
        rows += fiscal.scenarios(stack, workdir / "fiscal", smoke=smoke)
    finally:
        stack.stop()
        redis.stop()
    return rows


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"{report['date']} · {report['scale']} · {report['machine']['cpus']} CPUs "
        f"({report['machine']['cpu']}) · {report['machine']['memory_gib']} GiB",
        "",
        "| scenario | rps / entries/s | p50 ms | p99 ms | error % | notes |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        # Write scaling: its summary, then a line per leg.
        for line in [row, *row.get("legs", [])]:
            lines.append(_markdown_row(line))
    return "\n".join(lines)


def _markdown_row(row: dict[str, Any]) -> str:
    name = row.get("scenario", f"  · leg, {row.get('processes')} process(es)")
    rate = row.get("rps", row.get("entries_per_second", row.get("offered_rps", "")))
    shown = {"scenario", "rps", "entries_per_second", "p50_ms", "p99_ms", "error_pct"}
    shown |= {"legs", "by_leg"}  # their own lines, or (side by side) their own table
    notes = {k: v for k, v in row.items() if k not in shown}
    return (
        f"| {name} | {rate} | {row.get('p50_ms', '')} | {row.get('p99_ms', '')} "
        f"| {row.get('error_pct', '')} | {json.dumps(notes)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=sorted(scenarios.SCALES), default="full")
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results/…)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the Caixa checkout")
    parser.add_argument(
        "--only",
        choices=["write-scaling", "audit-cost", "fiscal", "side-by-side", *TWINS],
        help="run this scenario alone (write-scaling needs no stack)",
    )
    parser.add_argument("--note", help="a remark stored in the results JSON")
    args = parser.parse_args()
    scale = scenarios.SCALES[args.scale]
    name = args.only or scale.name
    out = args.out or RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = run(
        scale,
        MeshSources(args.repo.resolve()),
        out=out,
        only=args.only,
        note=args.note,
    )
    print(markdown(report))
    pairs = [r for r in report["results"] if r["scenario"].startswith("side by side")]
    if pairs:
        print()
        print(side_by_side.markdown(pairs))


if __name__ == "__main__":
    main()
