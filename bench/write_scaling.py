"""Write scaling: CreateLancamento with 1 and with 2 lancamentos processes on
one database, in one run, legs interleaved (1, 2, 1, 2, …) against the noise.

Each leg is the same closed-loop load (the same requests in flight in all,
split evenly over the processes, the same duration and request cap), a
distinct request_id per request over many merchants, sent direct over gRPC on
loopback by `bench.grpc_load`. Successes are counted by grpc-status from the
processes' metrics, and checked against the rows the leg stored. While a leg
runs, pg_locks is sampled for the feed lock (`store.FEED_LOCK_KEY`) that every
writer holds through commit.

The processes run without their dispatcher (nothing consumes the outbox: this
measures the booking path alone). The second starts after the first leg and
stays up, idle, through the later 1-process legs.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any

from bench import metrics
from bench.cpu import CpuWindow
from bench.pg_locks import LockSampler
from bench.stack import Service, sql_scalar
from bench.stats import summarize
from services.lancamentos.app import MIGRATIONS
from services.lancamentos.store import FEED_LOCK_KEY
from services.platform.migrations import upgrade
from tooling.devstack.health import grpc_serving
from tooling.devstack.infra import create_database, drop_database
from tooling.devstack.processes import LOOPBACK, ServerProcess, free_port
from tooling.devstack.supervisor import Supervisor
from tooling.stack.supervised import service_argv

CREATE = "/lancamentos.v1.LancamentosService/CreateLancamento"
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Size:
    seconds: float  # measured, per leg
    warmup: float  # per leg, not measured
    in_flight: int  # requests in flight in every leg, split over the processes
    pairs: int  # (1 process, 2 processes) legs
    max_rps: int  # the request cap of a leg is seconds × max_rps


SIZES = {
    "smoke": Size(seconds=1, warmup=0.2, in_flight=4, pairs=2, max_rps=5000),
    "full": Size(seconds=20, warmup=2, in_flight=32, pairs=3, max_rps=5000),
}


@dataclass
class WriteRun:
    """lancamentos processes on one database, and closed-loop create legs against them."""

    db: str
    workdir: Path
    size: Size
    merchants: int
    days: int
    run_id: str
    supervisor: Supervisor
    services: list[tuple[Service, ServerProcess]]

    def add_process(self) -> None:
        name = f"lancamentos-{len(self.services) + 1}"
        grpc_port, metrics_port = free_port(), free_port()
        address = f"{LOOPBACK}:{grpc_port}"
        env = {
            **os.environ,
            "DATABASE_URL": self.db,
            "GRPC_HOST": LOOPBACK,
            "GRPC_PORT": str(grpc_port),
            "METRICS_PORT": str(metrics_port),
            "RUN_DISPATCHER": "false",
            "LOG_LEVEL": "WARNING",
            "DATABASE_POOL_SIZE": "20",
        }
        process = self.supervisor.start(
            name,
            service_argv("lancamentos", "serve"),
            env=env,
            ready=lambda: grpc_serving(address),
        )
        self.supervisor.wait_ready(30)
        self.services.append((Service(name, address, f"{LOOPBACK}:{metrics_port}"), process))

    def leg(self, number: int, processes: int) -> dict[str, Any]:
        targets = [service for service, _ in self.services[:processes]]
        drivers: list[subprocess.Popen[str]] = []
        try:
            for i, target in enumerate(targets):
                drivers.append(self._driver(target, number, i, processes))
            return self._measure(number, processes, drivers)
        finally:
            for driver in drivers:
                if driver.poll() is None:
                    driver.kill()
                    driver.wait(timeout=10)

    def _measure(
        self, number: int, processes: int, drivers: list[subprocess.Popen[str]]
    ) -> dict[str, Any]:
        """Starts the waiting drivers together and measures until they are done."""
        prefix = f"ws-{self.run_id}-L{number}"
        every = [service.metrics for service, _ in self.services]
        before = [metrics.handled_by_code([m], CREATE) for m in every]
        sampler = LockSampler(self.db, FEED_LOCK_KEY)
        cpu = CpuWindow(
            {
                "lancamentos": [process.pid for _, process in self.services[:processes]],
                "postgres_backends": _backends(self.db),
            }
        )
        sampler.start()
        try:
            for driver in drivers:
                assert driver.stdin is not None
                driver.stdin.write("go\n")
                driver.stdin.flush()
            summaries = [_finish(d, self.size.seconds + 60) for d in drivers]
        finally:
            lock = sampler.stop()
        seconds = max(s["seconds"] for s in summaries)
        used = cpu.end(seconds)
        backends = used.pop("postgres_backends_cores")
        if isinstance(backends, list):
            used["postgres_backends_cores"] = round(sum(backends), 2)
        after = [metrics.handled_by_code([m], CREATE) for m in every]
        by_process = [metrics.delta(a, b) for a, b in zip(after, before, strict=True)]
        codes: dict[str, int] = {}
        for delta in by_process:
            for code, n in delta.items():
                codes[code] = codes.get(code, 0) + n
        stored, commits = _stored(self.db, f"{prefix}-%")
        latency = summarize(
            [float(v) for i in range(processes) for v in self._latencies(number, i).split()]
        )
        client_errors = {
            code: n
            for s in summaries
            for code, n in s["client_codes"].items()
            if code != "OK" and n
        }
        ok = codes.get("OK", 0)
        hold_ms = None
        if commits and isinstance(lock.get("held_pct"), float):
            hold_ms = round(lock["held_pct"] / 100 * seconds * 1000 / commits, 3)
        return {
            "processes": processes,
            "in_flight": self.size.in_flight,
            "seconds": round(seconds, 2),
            "rps": round(ok / seconds, 1) if seconds else 0.0,
            "p50_ms": latency.p50_ms,
            "p99_ms": latency.p99_ms,
            "error_pct": _error_pct(codes),
            "grpc_codes": codes,
            "ok_by_process": [d.get("OK", 0) for d in by_process[:processes]],
            "client_errors": client_errors,
            "entries_stored": stored,
            "commits": commits,
            "entries_per_commit": round(stored / commits, 2) if commits else None,
            "feed_lock": {**lock, "hold_ms_per_commit_est": hold_ms},
            "driver_cores": round(sum(s["cpu_seconds"] for s in summaries) / seconds, 2),
            **used,
        }

    def _latencies(self, number: int, index: int) -> str:
        return self._latency_file(number, index).read_text()

    def _latency_file(self, number: int, index: int) -> Path:
        return self.workdir / f"latencies-L{number}-p{index}.txt"

    def _driver(
        self, target: Service, number: int, index: int, processes: int
    ) -> subprocess.Popen[str]:
        """A driver of leg `number` to `target`, started, warmed up and waiting for go."""
        size = self.size
        driver = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.grpc_load",
                f"--target={target.address}",
                f"--prefix=ws-{self.run_id}-L{number}-p{index}",
                f"--latencies={self._latency_file(number, index)}",
                f"--in-flight={max(1, size.in_flight // processes)}",
                f"--seconds={size.seconds}",
                f"--max-requests={int(size.seconds * size.max_rps) // processes}",
                f"--warmup={size.warmup}",
                f"--merchants={self.merchants}",
                f"--days={self.days}",
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert driver.stdout is not None
        ready, _, _ = select.select([driver.stdout], [], [], 30 + size.warmup)
        line = driver.stdout.readline() if ready else ""
        if line.strip() != "ready":
            driver.kill()
            _, err = driver.communicate(timeout=10)
            raise RuntimeError(f"bench.grpc_load did not get ready: {line!r} {err[-2000:]}")
        return driver


def _finish(driver: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    try:
        out, err = driver.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        driver.kill()
        driver.communicate(timeout=10)
        raise
    if driver.returncode != 0:
        raise RuntimeError(f"bench.grpc_load failed ({driver.returncode}): {err[-2000:]}")
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return summary


def _stored(db: str, pattern: str) -> tuple[int, int]:
    """Rows a leg stored, and the commits that stored them: the booking
    statement is its own transaction, so its rows share one now()."""
    found = sql_scalar(
        db,
        "SELECT ARRAY[count(*), count(DISTINCT created_at)] FROM lancamentos "
        f"WHERE request_id LIKE '{pattern}'",
    )
    assert isinstance(found, list)
    return int(found[0]), int(found[1])


def _backends(db: str) -> list[int]:
    """The server processes of the services' connections to `db`."""
    found = sql_scalar(
        db,
        "SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    assert isinstance(found, list)
    return [int(pid) for pid in found]


def _error_pct(codes: dict[str, int]) -> float:
    total = sum(codes.values())
    return round(100 * (total - codes.get("OK", 0)) / total, 3) if total else 100.0


def write_scaling(
    admin_url: str, scale_name: str, *, merchants: int, days: int, workdir: Path
) -> dict[str, Any]:
    """The scenario's results row; `legs` holds each leg in the order run."""
    size = SIZES[scale_name]
    run_id = uuid.uuid4().hex[:8]
    name = f"bench_scaling_{run_id}"
    workdir.mkdir(parents=True, exist_ok=True)
    db = create_database(admin_url, name)
    supervisor = Supervisor(workdir / "logs", grace=20.0)
    run = WriteRun(db, workdir, size, merchants, days, run_id, supervisor, [])
    legs: list[dict[str, Any]] = []
    try:
        upgrade(MIGRATIONS, db)
        standbys = sql_scalar(db, "SHOW synchronous_standby_names")
        run.add_process()
        for _ in range(size.pairs):
            legs.append(run.leg(len(legs) + 1, processes=1))
            if len(run.services) < 2:
                run.add_process()
            legs.append(run.leg(len(legs) + 1, processes=2))
    finally:
        supervisor.stop()
        drop_database(admin_url, name)
    one = [leg for leg in legs if leg["processes"] == 1]
    two = [leg for leg in legs if leg["processes"] == 2]
    rps_1, rps_2 = mean(leg["rps"] for leg in one), mean(leg["rps"] for leg in two)
    return {
        "scenario": "write scaling: CreateLancamento, 1 vs 2 lancamentos processes, one database",
        "tool": "bench.grpc_load (direct gRPC, a distinct request_id per request)",
        "seconds_per_leg": size.seconds,
        "in_flight": size.in_flight,
        "merchants": merchants,
        "order": [leg["processes"] for leg in legs],
        "rps_1_process": round(rps_1, 1),
        "rps_2_processes": round(rps_2, 1),
        "ratio": round(rps_2 / rps_1, 3) if rps_1 else None,
        "pair_ratios": [
            round(b["rps"] / a["rps"], 3) if a["rps"] else None
            for a, b in zip(one, two, strict=True)
        ],
        "p99_ms_1_process": max(leg["p99_ms"] for leg in one),
        "p99_ms_2_processes": max(leg["p99_ms"] for leg in two),
        "error_pct": max(leg["error_pct"] for leg in legs),
        "synchronous_standby_names": standbys,
        "legs": legs,
    }
