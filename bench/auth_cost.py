"""What checking tokens costs: creates through the REST gateway of two stacks
alike but for authentication, in one run.

One stack checks tokens as `make run` does (the gateway's jwt_authn, then each
service verifying the token again, and the dispatcher's workload identity on
ingest); the other checks none. wrk posts the same creates to each in turn, in
ABBA order so neither always runs first. Successes are counted by grpc-status
from the services' metrics; anything refused, at the gateway too, is an error."""

from __future__ import annotations

import uuid
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
        legs: list[dict[str, Any]] = []
        order = [("on", on), ("off", off)]
        for round_ in range(rounds):
            for name, stack in order if round_ % 2 == 0 else reversed(order):
                legs.append(_leg(name, stack, token, seconds, connections))
    finally:
        on.stop()
    return {"scenario": "authentication (jwt_authn + every service): creates", **_summary(legs)}


def _leg(name: str, stack: Stack, token: str, seconds: int, connections: int) -> dict[str, Any]:
    env = {"MERCHANTS": "200", "DAYS": "30", "RUN": uuid.uuid4().hex[:8]}
    if stack.authenticated:
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
        "auth": name,
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
            out[f"{key}_{name}"] = round(mean(g[key] for g in legs if g["auth"] == name), 3)
    if out["rps_off"]:
        out["rps_ratio"] = round(out["rps_on"] / out["rps_off"], 3)
    if out["p99_ms_off"]:
        out["p99_ratio"] = round(out["p99_ms_on"] / out["p99_ms_off"], 3)
    out["legs"] = legs
    return out
