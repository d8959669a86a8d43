"""What the audit trail costs the booking path: CreateLancamento on two databases
alike but for it, in one run, legs interleaved (on, off, off, on, …).

Both are migrated the same; on the "off" one `audit_append` is replaced by a
function that only counts its rows, so the statement, its CTE and its arguments
stay and what goes is the trail's work: the advisory lock, the heads, the hashes
and the record rows. One lancamentos process each, no dispatcher, driven direct
over gRPC as bench.write_scaling does.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from statistics import mean
from typing import Any

from bench.stack import sql_scalar
from bench.write_scaling import SIZES, WriteRun
from services.lancamentos.app import MIGRATIONS
from services.platform.migrations import upgrade
from tooling.devstack.infra import create_database, drop_database
from tooling.devstack.supervisor import Supervisor

# The same signature, no trail: what the booking statement costs without one.
NO_AUDIT = """
CREATE OR REPLACE FUNCTION audit_append(
    merchants text[], subjects text[], rpcs text[], request_ids text[],
    entry_ids text[], outcomes text[], trace_ids text[]
) RETURNS integer LANGUAGE sql AS 'SELECT coalesce(array_length(merchants, 1), 0)'
"""


def audit_cost(
    admin_url: str, scale_name: str, *, merchants: int, days: int, workdir: Path
) -> dict[str, Any]:
    size = SIZES[scale_name]
    run_id = uuid.uuid4().hex[:8]
    workdir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(workdir / "logs", grace=20.0)
    names = {variant: f"bench_audit_{variant}_{run_id}" for variant in ("on", "off")}
    runs: dict[str, WriteRun] = {}
    legs: list[dict[str, Any]] = []
    try:
        for variant, name in names.items():
            db = create_database(admin_url, name)
            upgrade(MIGRATIONS, db)
            if variant == "off":
                sql_scalar(db, NO_AUDIT)
            run = WriteRun(db, workdir / variant, size, merchants, days, run_id, supervisor, [])
            (workdir / variant).mkdir(parents=True, exist_ok=True)
            run.add_process()
            runs[variant] = run
        for pair in range(size.pairs):
            for variant in ("on", "off") if pair % 2 == 0 else ("off", "on"):
                leg = runs[variant].leg(len(legs) + 1, processes=1)
                legs.append({"variant": variant, **leg})
        # Warm-ups included: every entry either database holds, and its records.
        entries = {v: _count(r.db, "lancamentos") for v, r in runs.items()}
        records = {v: _count(r.db, "audit_records") for v, r in runs.items()}
    finally:
        supervisor.stop()
        for name in names.values():
            drop_database(admin_url, name)
    on = [leg for leg in legs if leg["variant"] == "on"]
    off = [leg for leg in legs if leg["variant"] == "off"]
    rps_on, rps_off = mean(leg["rps"] for leg in on), mean(leg["rps"] for leg in off)
    p99_on, p99_off = mean(leg["p99_ms"] for leg in on), mean(leg["p99_ms"] for leg in off)
    return {
        "scenario": "audit trail: CreateLancamento with and without its records, one process",
        "tool": "bench.grpc_load (direct gRPC, a distinct request_id per request)",
        "seconds_per_leg": size.seconds,
        "in_flight": size.in_flight,
        "order": [leg["variant"] for leg in legs],
        "rps_on": round(rps_on, 1),
        "rps_off": round(rps_off, 1),
        "rps_ratio": round(rps_on / rps_off, 3) if rps_off else None,
        "p99_ms_on": round(p99_on, 2),
        "p99_ms_off": round(p99_off, 2),
        "p99_ratio": round(p99_on / p99_off, 3) if p99_off else None,
        "error_pct": max(leg["error_pct"] for leg in legs),
        # Proof of the variants: the "on" database holds one record per entry.
        "entries": entries,
        "audit_records": records,
        "legs": legs,
    }


def _count(db: str, table: str) -> int:
    return int(str(sql_scalar(db, f"SELECT count(*) FROM {table}")))
