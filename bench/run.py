"""`python -m bench.run [--scale smoke|full]`: starts the stack, runs every
scenario with native load generators, writes bench/results/<date>-<scale>.json
and prints a Markdown table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import scenarios
from bench.stack import Stack, sql_scalar
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


def run(scale: scenarios.Scale, sources: MeshSources, *, out: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="caixa-bench-") as tmp:
        workdir = Path(tmp)
        postgres = ensure_postgres(os.environ.get("DATABASE_URL"), workdir / "pg")
        redis = ensure_redis(os.environ.get("REDIS_URL"), workdir / "redis")
        stack = Stack(postgres.url, redis.url, workdir / "stack", sources)
        rows: list[dict[str, Any]] = []
        try:
            stack.start()
            durability = {
                "synchronous_commit": sql_scalar(stack.lancamentos_db, "SHOW synchronous_commit"),
                "fsync": sql_scalar(stack.lancamentos_db, "SHOW fsync"),
                "postgresql": sql_scalar(stack.lancamentos_db, "SHOW server_version"),
            }
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
        finally:
            stack.stop()
            redis.stop()
            postgres.stop()
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": scale.name,
        "merchants": scale.merchants,
        "days": scale.days,
        "machine": machine(),
        "durability": durability,
        "results": rows,
    }
    if out is not None:
        out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"{report['date']} · {report['scale']} · {report['machine']['cpus']} CPUs "
        f"({report['machine']['cpu']}) · {report['machine']['memory_gib']} GiB",
        "",
        "| scenario | rps / entries/s | p50 ms | p99 ms | error % | notes |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        rate = row.get("rps", row.get("entries_per_second", row.get("offered_rps", "")))
        notes = {
            k: v
            for k, v in row.items()
            if k not in {"scenario", "rps", "entries_per_second", "p50_ms", "p99_ms", "error_pct"}
        }
        lines.append(
            f"| {row['scenario']} | {rate} | {row.get('p50_ms', '')} | {row.get('p99_ms', '')} "
            f"| {row.get('error_pct', '')} | {json.dumps(notes)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=sorted(scenarios.SCALES), default="full")
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results/…)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the Caixa checkout")
    args = parser.parse_args()
    scale = scenarios.SCALES[args.scale]
    out = args.out or RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-{scale.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    print(markdown(run(scale, MeshSources(args.repo.resolve()), out=out)))


if __name__ == "__main__":
    main()
