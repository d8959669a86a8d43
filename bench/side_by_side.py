"""Caixa beside the simple service a user could build instead (bench.baseline),
in one run: the same seed, the same wrk scripts, repetitions alternated.

Each scenario (create, warm read, cold read) runs at each connection count on
four legs:
- `caixa_mesh`: REST through the gateway, the transcoder and the sidecars;
- `caixa_alone`: Caixa's gRPC services directly (h2load for the warm read,
  bench.grpc_load where every request must differ);
- `baseline`: the FastAPI service directly;
- `baseline_envoy`: the same behind one Envoy, the mesh's share measured.
Successes: Caixa's by grpc-status from its servers' metrics, the baseline's by
HTTP status. Creates are also counted in each database, so a lost or doubled
entry shows. CPU is read per process group from /proc."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis
from consolidado.v1 import consolidado_pb2 as cpb
from lancamentos.v1 import lancamentos_pb2 as lpb

from bench import h2load, metrics, wrk
from bench.baseline.server import Baseline, Row
from bench.cpu import CpuWindow
from bench.grpc_bodies import write_body
from bench.scenarios import BALANCE, CREATE, FIRST_DAY, drain_outbox, error_pct, import_body
from bench.stack import Stack, sql_scalar
from bench.stats import summarize

LEGS = ("caixa_mesh", "caixa_alone", "baseline", "baseline_envoy")
SCENARIOS = ("create", "warm read", "cold read")
METHODS = {"create": CREATE, "warm read": BALANCE, "cold read": BALANCE}


@dataclass(frozen=True)
class Size:
    name: str
    merchants: int
    days: int
    per_day: int  # entries per merchant and day in the seed
    seconds: float
    connections: tuple[int, ...]
    rounds: int


SIZES = {
    "smoke": Size("smoke", merchants=5, days=8, per_day=2, seconds=1, connections=(4,), rounds=1),
    "full": Size(
        "full", merchants=200, days=90, per_day=5, seconds=10, connections=(16, 64), rounds=3
    ),
}


def seed_rows(size: Size) -> list[Row]:
    return [
        (
            f"m{m}",
            f"seed-{m}-{d}-{k}",
            "KIND_DEBIT" if (m + d + k) % 4 == 0 else "KIND_CREDIT",
            1000 + (m * 31 + d * 17 + k * 13) % 50000,
            FIRST_DAY + timedelta(days=d),
        )
        for m in range(size.merchants)
        for d in range(size.days)
        for k in range(size.per_day)
    ]


def side_by_side(
    stack: Stack, baseline: Baseline, size: Size, workdir: Path, flames: Path | None = None
) -> list[dict[str, Any]]:
    """Seeds both, then every scenario x connections, one row each. With
    `flames`, py-spy records a flame graph there of the service serving each
    scenario's first round at the fewest connections, Caixa's and the baseline's."""
    workdir.mkdir(parents=True, exist_ok=True)
    rows = seed_rows(size)
    _seed_caixa(stack, rows, workdir)
    baseline.seed(rows)
    drain_outbox(stack)
    _agree(stack, baseline, size)
    run = _Run(stack, baseline, size, workdir, flames)
    return [run.scenario(s, c) for s in SCENARIOS for c in size.connections]


def _seed_caixa(stack: Stack, rows: list[Row], workdir: Path) -> None:
    assert stack.lancamentos is not None
    requests = [
        lpb.CreateLancamentoRequest(
            merchant_id=merchant,
            kind=kind,
            amount_cents=cents,
            value_date=day.isoformat(),
            request_id=request_id,
        )
        for merchant, request_id, kind, cents, day in rows
    ]
    url = f"http://{stack.lancamentos.address}/lancamentos.v1.LancamentosService/ImportLancamentos"
    for n, start in enumerate(range(0, len(requests), 5000)):
        body = import_body(workdir / f"seed-{n}.bin", requests[start : start + 5000])
        h2load.run(url, body, requests=1, clients=1, streams=1)
    stored = sql_scalar(stack.lancamentos_db, "SELECT count(*) FROM lancamentos")
    if stored != len(rows):
        raise RuntimeError(f"Caixa's seed stored {stored} of {len(rows)} entries")


BALANCE_FIELDS = (
    "credits_cents",
    "debits_cents",
    "net_cents",
    "opening_balance_cents",
    "closing_balance_cents",
    "lancamentos_count",
)


def _agree(stack: Stack, baseline: Baseline, size: Size) -> None:
    """The two do the same work: a few balances, first, middle and last, read alike."""
    keys = [(0, 0), (1, size.days // 2), (size.merchants - 1, size.days - 1)]
    for merchant, day in keys:
        path = f"/v1/merchants/m{merchant}/daily-balances/{FIRST_DAY + timedelta(days=day)}"
        caixa = _get_json(f"http://127.0.0.1:{stack.gateway_port}{path}")
        simple = _get_json(baseline.url + path)
        # The transcoder writes int64 as JSON strings.
        theirs = {f: int(caixa[f]) for f in BALANCE_FIELDS}
        ours = {f: int(simple[f]) for f in BALANCE_FIELDS}
        if theirs != ours:
            raise RuntimeError(f"{path}: Caixa answers {theirs}, the baseline {ours}")


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        found = json.loads(response.read())
    assert isinstance(found, dict)
    return found


class _Run:
    def __init__(
        self, stack: Stack, baseline: Baseline, size: Size, workdir: Path, flames: Path | None
    ) -> None:
        self.stack, self.baseline, self.size, self.workdir = stack, baseline, size, workdir
        self.flames = flames
        self.legs: dict[str, Callable[[str, int, str], dict[str, Any]]] = {
            "caixa_mesh": self._caixa_mesh,
            "caixa_alone": self._caixa_alone,
            "baseline": lambda s, c, tag: self._baseline(s, c, tag, self.baseline.url),
            "baseline_envoy": lambda s, c, tag: self._baseline(s, c, tag, self.baseline.envoy_url),
        }
        # fiscal idles through this bench: its processes are left out.
        pids = {n: p for n, p in stack.process_pids().items() if "fiscal" not in n}
        envoys = {name for name, pid in pids.items() if _is_envoy(pid)}
        self.stack_replica = next(n for n in sorted(pids) if n.startswith("consolidado"))
        self.groups = {
            "caixa_services": [p for n, p in pids.items() if n not in envoys],
            "caixa_gateway": [pids["gateway"]],
            "caixa_sidecars": [p for n, p in pids.items() if n in envoys and n != "gateway"],
            **baseline.pids(),
        }

    def scenario(self, scenario: str, connections: int) -> dict[str, Any]:
        measured: dict[str, list[dict[str, Any]]] = {leg: [] for leg in LEGS}
        for round_ in range(self.size.rounds):
            # Alternated: each round starts one leg later, so none always runs first.
            order = LEGS[round_ % len(LEGS) :] + LEGS[: round_ % len(LEGS)]
            for leg in order:
                tag = f"{scenario.split(maxsplit=1)[0]}-{connections}-{round_}-{leg}"
                measured[leg].append(self._measure(leg, scenario, connections, tag))
        flames: dict[str, dict[str, Any]] = {}
        if self.flames is not None and connections == self.size.connections[0]:
            # A round of its own, not counted: sampling costs CPU on this small machine.
            for leg in ("caixa_mesh", "baseline"):
                with self._flame(leg, scenario, connections) as svg:
                    self._measure(leg, scenario, connections, f"{tag}-flame-{leg}")
                flames[leg] = {"file": svg.name, "bytes": svg.stat().st_size}
        legs = {leg: _median_leg(runs) for leg, runs in measured.items()}
        return {
            "scenario": f"side by side: {scenario}, {connections} connections",
            "rps": legs["caixa_mesh"]["rps"],
            "p50_ms": legs["caixa_mesh"]["p50_ms"],
            "p99_ms": legs["caixa_mesh"]["p99_ms"],
            "error_pct": max(leg["error_pct"] for leg in legs.values()),
            "ratios": {
                "mesh_vs_baseline": _ratio(legs["caixa_mesh"], legs["baseline"]),
                "alone_vs_baseline": _ratio(legs["caixa_alone"], legs["baseline"]),
                "baseline_envoy_vs_baseline": _ratio(legs["baseline_envoy"], legs["baseline"]),
                "mesh_vs_baseline_envoy": _ratio(legs["caixa_mesh"], legs["baseline_envoy"]),
            },
            "by_leg": legs,
            **({"flame_graphs": flames} if flames else {}),
            "rounds": self.size.rounds,
            "seconds_per_leg": self.size.seconds,
        }

    @contextlib.contextmanager
    def _flame(self, leg: str, scenario: str, connections: int) -> Iterator[Path]:
        """py-spy on the Python service serving the leg: lancamentos for creates,
        one consolidado replica for reads, or the baseline's worker."""
        assert self.flames is not None
        pid = self._profiled_pid(leg, scenario)
        name = f"flame-{leg}-{scenario.replace(' ', '-')}-{connections}.svg"
        self.flames.mkdir(parents=True, exist_ok=True)
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                # Native frames too: most of a gRPC service's time is in grpc's C
                # core and the event loop, which Python frames alone show as idle.
                "--native",
                "--rate",
                "200",
                "--duration",
                str(int(self.size.seconds)),
                "--output",
                str(self.flames / name),
                "--pid",
                str(pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            yield self.flames / name
        finally:
            _, err = spy.communicate(timeout=self.size.seconds + 60)
            if spy.returncode != 0:
                raise RuntimeError(f"py-spy failed: {err[-1000:]}")

    def _profiled_pid(self, leg: str, scenario: str) -> int:
        if leg == "baseline":
            assert self.baseline.server is not None
            return self.baseline.server.pid
        pids = self.stack.process_pids()
        return pids["lancamentos"] if scenario == "create" else pids[self.stack_replica]

    def _measure(self, leg: str, scenario: str, connections: int, tag: str) -> dict[str, Any]:
        if scenario == "cold read" and leg.startswith("caixa"):
            self._forget_cached_balances()
        sessions = self._sessions()
        cpu = CpuWindow(self.groups)
        started = time.perf_counter()
        found = self.legs[leg](scenario, connections, tag)
        wall = time.perf_counter() - started
        used = cpu.end(wall)
        opened = {side: n - sessions[side] for side, n in self._sessions().items()}
        # CPU per request, by group: comparable whatever drove the load.
        ok = found["ok"]
        seconds = found["seconds"] or wall
        per_request = {
            group: round(sum(cores) * wall * 1000 / ok, 3)
            for group in self.groups
            if isinstance(cores := used.get(f"{group}_cores"), list) and cores and ok
        }
        return {
            **found,
            "rps": round(ok / seconds, 1),
            "cpu_ms_per_request": per_request,
            "machine_busy_pct": used["machine_busy_pct"],
            # PostgreSQL backends started (each a fork): a pool that churns shows
            # here. A create leg's own two row counts are 2 of them.
            "pg_sessions_opened": opened,
        }

    def _sessions(self) -> dict[str, int]:
        """Sessions ever opened to each side's databases, from pg_stat_database."""
        sides = {
            "caixa": [self.stack.lancamentos_db, self.stack.consolidado_db],
            "baseline": [self.baseline.database_url],
        }
        found = {}
        for side, urls in sides.items():
            names = ", ".join(f"'{url.rsplit('/', 1)[1]}'" for url in urls)
            query = (
                "SELECT coalesce(sum(sessions), 0)::bigint FROM pg_stat_database "
                f"WHERE datname IN ({names})"
            )
            total = sql_scalar(self.stack.admin_url, query)
            assert isinstance(total, int)
            found[side] = total
        return found

    def _caixa_mesh(self, scenario: str, connections: int, tag: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.stack.gateway_port}"
        return self._caixa(scenario, lambda: self._wrk(url, scenario, connections, tag))

    def _caixa_alone(self, scenario: str, connections: int, tag: str) -> dict[str, Any]:
        assert self.stack.lancamentos is not None
        if scenario == "warm read":
            return self._caixa(scenario, lambda: self._h2load_warm(connections))
        targets = (
            [self.stack.lancamentos.address]
            if scenario == "create"
            else [s.address for s in self.stack.consolidado]
        )
        call = "create" if scenario == "create" else "balance"
        return self._caixa(scenario, lambda: self._grpc_load(targets, call, connections, tag))

    def _caixa(self, scenario: str, drive: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Counts by grpc-status on the servers, and creates in the ledger too."""
        method = METHODS[scenario]
        stored = self._caixa_stored() if scenario == "create" else 0
        before = metrics.handled_by_code(self.stack.metrics, method)
        found = drive()
        codes = metrics.delta(metrics.handled_by_code(self.stack.metrics, method), before)
        ok = codes.get("OK", 0)
        result = {**found, "ok": ok, "grpc_codes": codes, "error_pct": error_pct(codes)}
        if scenario == "create":
            result |= _ledger_check(self._caixa_stored() - stored, ok)
        return result

    def _baseline(self, scenario: str, connections: int, tag: str, url: str) -> dict[str, Any]:
        stored = self.baseline.count() if scenario == "create" else 0
        found = self._wrk(url, scenario, connections, tag)
        # wrk's requests are the answered ones; a socket error (e.g. a timeout) is
        # a call that got no answer at all.
        refused, unanswered = found.pop("non_2xx"), found.pop("socket_errors")
        ok = found["requests"] - refused
        calls = found["requests"] + unanswered
        result = {
            **found,
            "ok": ok,
            "error_pct": round(100 * (refused + unanswered) / calls, 3) if calls else 100.0,
        }
        if scenario == "create":
            result |= _ledger_check(self.baseline.count() - stored, ok)
        return result

    def _wrk(self, url: str, scenario: str, connections: int, tag: str) -> dict[str, Any]:
        size = self.size
        env = {"MERCHANTS": str(size.merchants), "DAYS": str(size.days)}
        if scenario == "create":
            env["RUN"] = f"{self.stack.run_id}-{tag}"
        if scenario == "warm read":
            env |= {"MERCHANT": "m1", "DAY": str(size.days // 2)}
        script = "create.lua" if scenario == "create" else "balance.lua"
        result = wrk.run(url, script, seconds=size.seconds, connections=connections, env=env)
        return {
            "tool": "wrk",
            "requests": result.requests,
            "seconds": result.seconds,
            "non_2xx": result.non_2xx,
            "socket_errors": result.socket_errors,
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
        }

    def _h2load_warm(self, connections: int) -> dict[str, Any]:
        """The same key at both consolidado replicas, the connections split."""
        day = (FIRST_DAY + timedelta(days=self.size.days // 2)).isoformat()
        body = write_body(
            self.workdir / "warm.bin", [cpb.GetDailyBalanceRequest(merchant_id="m1", date=day)]
        )
        replicas = self.stack.consolidado

        def one(address: str) -> h2load.H2loadResult:
            return h2load.run(
                f"http://{address}{BALANCE}",
                body,
                requests=0,
                clients=max(1, connections // len(replicas)),
                streams=1,
                duration=self.size.seconds,
            )

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(replicas)) as pool:
            results = list(pool.map(one, [r.address for r in replicas]))
        return {
            "tool": "h2load",
            "requests": sum(r.requests_done for r in results),
            "seconds": max(r.seconds for r in results),
            "p50_ms": max(r.latency.p50_ms for r in results),
            "p99_ms": max(r.latency.p99_ms for r in results),
        }

    def _grpc_load(
        self, targets: list[str], call: str, connections: int, tag: str
    ) -> dict[str, Any]:
        """bench.grpc_load at each target, `connections` calls in flight in all."""
        size = self.size
        drivers = []
        for i, target in enumerate(targets):
            latencies = self.workdir / f"latencies-{tag}-{i}.txt"
            drivers.append(
                (
                    latencies,
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "bench.grpc_load",
                            f"--target={target}",
                            f"--call={call}",
                            f"--prefix=sbs-{self.stack.run_id}-{tag}-{i}",
                            f"--latencies={latencies}",
                            f"--in-flight={max(1, connections // len(targets))}",
                            f"--seconds={size.seconds}",
                            f"--max-requests={int(size.seconds * 20000)}",
                            f"--merchants={size.merchants}",
                            f"--days={size.days}",
                        ],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    ),
                )
            )
        try:
            for _, driver in drivers:
                assert driver.stdout is not None
                if (line := driver.stdout.readline().strip()) != "ready":
                    raise RuntimeError(f"bench.grpc_load did not get ready: {line!r}")
            for _, driver in drivers:
                assert driver.stdin is not None
                driver.stdin.write("go\n")
                driver.stdin.flush()
            for _, driver in drivers:
                _, err = driver.communicate(timeout=size.seconds + 60)
                if driver.returncode != 0:
                    raise RuntimeError(f"bench.grpc_load failed: {err[-2000:]}")
        finally:
            for _, driver in drivers:
                if driver.poll() is None:
                    driver.kill()
                    driver.wait(timeout=10)
        latency = summarize([float(v) for path, _ in drivers for v in path.read_text().split()])
        return {
            "tool": "bench.grpc_load (Python)",
            "requests": latency.count,
            "seconds": size.seconds,
            "p50_ms": latency.p50_ms,
            "p99_ms": latency.p99_ms,
        }

    def _caixa_stored(self) -> int:
        found = sql_scalar(self.stack.lancamentos_db, "SELECT count(*) FROM lancamentos")
        assert isinstance(found, int)
        return found

    def _forget_cached_balances(self) -> None:
        client = redis.Redis.from_url(self.stack.redis_url)
        try:
            for key in client.scan_iter(match=f"{self.stack.redis_key_prefix}*", count=1000):
                client.delete(key)
        finally:
            client.close()


def _ledger_check(stored: int, acknowledged: int) -> dict[str, int]:
    """Every acknowledged create must be stored: `lost` must be 0. More may be
    stored than acknowledged, at most one per connection: calls the load
    generator stopped waiting for at the end of its run."""
    return {
        "entries_stored": stored,
        "lost": max(0, acknowledged - stored),
        "stored_unacknowledged": max(0, stored - acknowledged),
    }


def _is_envoy(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip().startswith("envoy")
    except OSError:
        return False


def _median_leg(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median rate, whole (its latencies and CPU belong together)."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    chosen = ordered[(len(ordered) - 1) // 2]
    return {**chosen, "rps_by_round": [r["rps"] for r in runs]}


def _ratio(caixa: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    return {
        "rps": round(caixa["rps"] / other["rps"], 2) if other["rps"] else None,
        "p99": round(caixa["p99_ms"] / other["p99_ms"], 2) if other["p99_ms"] else None,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    """The README's table: each leg's rate and p99, and the ratios."""
    lines = [
        "| scenario | conns | Caixa via gateway | Caixa alone | baseline | baseline + Envoy "
        "| mesh ÷ baseline | alone ÷ baseline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        name, _, conns = row["scenario"].removeprefix("side by side: ").rpartition(", ")
        legs = row["by_leg"]
        cells = [f"{legs[leg]['rps']:,.0f} rps, p99 {legs[leg]['p99_ms']:.0f} ms" for leg in LEGS]
        ratios = row["ratios"]
        lines.append(
            f"| {name} | {conns.split()[0]} | {' | '.join(cells)} "
            f"| {ratios['mesh_vs_baseline']['rps']} | {ratios['alone_vs_baseline']['rps']} |"
        )
    return "\n".join(lines)
