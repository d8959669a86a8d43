"""What one feature costs: creates through the REST gateway of two stacks alike
but for it, in one run.

The "on" stack runs the feature as `make run` has it, the "off" stack (the
bench's main one) without it. wrk posts the same creates to each in turn, in
ABBA order so neither always runs first. Successes are counted by grpc-status
from the services' metrics; anything refused, at the gateway too, is an error.

- authentication: the gateway's jwt_authn, then each service verifying the
  token again, and the dispatcher's workload identity on ingest;
- tracing: requests traced by every Envoy and service, exported to the local
  trace receiver: all of them (make run's sampling), or 1 % (the chart's);
- mTLS: TLS 1.3 with client certificates on every sidecar-to-sidecar hop (the
  gateway's to lancamentos', the dispatcher's to consolidado's), and the inbound
  sidecars' RBAC on the peer's identity.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from statistics import mean
from typing import Any

from bench import metrics, wrk
from bench.scenarios import CREATE
from bench.stack import Stack
from caixa.cli.dev_tokens import dev_key, mint


def auth_cost(
    off: Stack, workdir: Path, *, seconds: int, connections: int, rounds: int
) -> dict[str, Any]:
    """`off`: a running stack without authentication; its twin with it is started here."""
    on = Stack(off.admin_url, off.redis_url, workdir, off.sources, authenticated=True)
    try:
        on.start()
        assert on.auth is not None
        token = mint(
            dev_key(on.auth.folder),
            subject="bench",
            merchants=["*"],
            scopes=["lancamentos:write"],
            ttl_seconds=3600,
        )
        legs = _legs(
            "auth",
            {"on": on, "off": off},
            {"on": token},
            seconds=seconds,
            connections=connections,
            rounds=rounds,
        )
    finally:
        on.stop()
    return {"scenario": "authentication (jwt_authn + every service): creates", **_summary(legs)}


def tracing_cost(
    off: Stack,
    workdir: Path,
    *,
    seconds: int,
    connections: int,
    rounds: int,
    sampling_percent: float = 100.0,
) -> dict[str, Any]:
    """`off`: a running stack that traces nothing; its twin, tracing
    `sampling_percent` of the requests, is started here."""
    on = Stack(
        off.admin_url,
        off.redis_url,
        workdir,
        off.sources,
        traced=True,
        sampling_percent=sampling_percent,
    )
    try:
        on.start()
        legs = _legs(
            "tracing",
            {"on": on, "off": off},
            {},
            seconds=seconds,
            connections=connections,
            rounds=rounds,
        )
        kept = _traces_kept(on.trace_url)
    finally:
        on.stop()
    return {
        "scenario": f"tracing ({sampling_percent:g} % of requests, every hop, exported): creates",
        **_summary(legs),
        # At least this many traces kept by the receiver (the query shows 1,000 at most).
        "traces_kept": kept,
    }


def mtls_cost(
    off: Stack, workdir: Path, *, seconds: int, connections: int, rounds: int
) -> dict[str, Any]:
    """`off`: a running stack with plain-text hops; its twin with mTLS is started here."""
    on = Stack(off.admin_url, off.redis_url, workdir, off.sources, mtls=True)
    try:
        on.start()
        legs = _legs(
            "mtls",
            {"on": on, "off": off},
            {},
            seconds=seconds,
            connections=connections,
            rounds=rounds,
        )
    finally:
        on.stop()
    return {"scenario": "mTLS between the sidecars (+ their RBAC): creates", **_summary(legs)}


def _traces_kept(url: str) -> int:
    """Proof the "on" legs traced: how many traces the receiver holds."""
    with urllib.request.urlopen(f"{url}/api/traces?limit=1000", timeout=10) as response:
        return len(json.load(response)["traces"])


def _legs(
    variable: str,
    stacks: Mapping[str, Stack],
    tokens: Mapping[str, str],
    *,
    seconds: int,
    connections: int,
    rounds: int,
) -> list[dict[str, Any]]:
    legs: list[dict[str, Any]] = []
    order = ["on", "off"]
    for round_ in range(rounds):
        for name in order if round_ % 2 == 0 else reversed(order):
            leg = _leg(stacks[name], tokens.get(name), seconds, connections)
            legs.append({"variant": name, variable: name, **leg})
    return legs


def _leg(stack: Stack, token: str | None, seconds: int, connections: int) -> dict[str, Any]:
    env = {"MERCHANTS": "200", "DAYS": "30", "RUN": uuid.uuid4().hex[:8]}
    if token is not None:
        env["TOKEN"] = token
    before = metrics.handled_by_code(stack.metrics, CREATE)
    result = wrk.run(
        f"http://127.0.0.1:{stack.gateway_port}",
        "create.lua",
        seconds=seconds,
        connections=connections,
        env=env,
    )
    codes = metrics.delta(metrics.handled_by_code(stack.metrics, CREATE), before)
    ok = codes.get("OK", 0)
    # Refused at the gateway (never counted by a service) or by a service: not 2xx.
    failed = result.non_2xx + result.socket_errors
    return {
        "rps": round(ok / result.seconds, 1) if result.seconds else 0.0,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "error_pct": round(100 * failed / max(result.requests, 1), 2),
        "grpc_codes": codes,
        "requests": result.requests,
    }


def _summary(legs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("rps", "p50_ms", "p99_ms", "error_pct"):
        for name in ("on", "off"):
            out[f"{key}_{name}"] = round(mean(g[key] for g in legs if g["variant"] == name), 3)
    if out["rps_off"]:
        out["rps_ratio"] = round(out["rps_on"] / out["rps_off"], 3)
    if out["p99_ms_off"]:
        out["p99_ratio"] = round(out["p99_ms_on"] / out["p99_ms_off"], 3)
    out["legs"] = legs
    return out
