"""What the gateway's REST field check (mesh.render.rest_fields) costs.

Gateway Envoys rendered alike except that one lacks the Lua filter: wrk posts the
same creates through each in turn (with, without, without, with, ...), and each gateway's
own CPU time per request is read from /proc. Two settings:
- `isolated`: every route answers 200 itself, so only the gateway works;
- `end_to_end`: in front of the stack's services, as clients see it.
Before measuring, each gateway is checked to be what it claims: only the one with
the check refuses an unknown field."""

from __future__ import annotations

import http.client
import json
import uuid
from pathlib import Path
from typing import Any

from bench import wrk
from bench.cpu import process_seconds
from bench.stack import Stack
from mesh.render.rest_fields import LUA
from tooling.devstack.envoy import start_envoy, write_config
from tooling.devstack.processes import ServerProcess, free_port


def _variant(config: dict[str, Any], *, with_check: bool) -> tuple[dict[str, Any], int, int]:
    """A copy of the gateway's config on fresh ports, with or without the check."""
    copy: dict[str, Any] = json.loads(json.dumps(config))
    admin_port, port = free_port(), free_port()
    copy["admin"]["address"]["socket_address"]["port_value"] = admin_port
    [listener] = copy["static_resources"]["listeners"]
    listener["name"] = f"gateway-{port}"
    listener["address"]["socket_address"]["port_value"] = port
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    if not with_check:
        hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] != LUA]
    assert any(f["name"] == LUA for f in hcm["http_filters"]) == with_check
    return copy, admin_port, port


DIRECT_ROUTES = [
    {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "{}"}}}
]


def _refuses_unknown_fields(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = '{"kind":"KIND_CREDIT","amount_cents":1,"request_id":"probe","date":"x"}'
        connection.request(
            "POST", "/v1/merchants/probe/lancamentos", body, {"content-type": "application/json"}
        )
        return connection.getresponse().status == 400
    finally:
        connection.close()


def rest_check_cost(
    stack: Stack, workdir: Path, *, seconds: int, connections: int, rounds: int = 2
) -> dict[str, Any]:
    gateway_config = json.loads((stack.workdir / "envoy" / "gateway.json").read_text())
    load = {"seconds": seconds, "connections": connections, "rounds": rounds}
    isolated = _measure(gateway_config, workdir / "isolated", isolated=True, **load)
    end_to_end = _measure(gateway_config, workdir / "e2e", isolated=False, **load)
    return {
        "scenario": "REST field check (Lua) at the gateway: creates",
        "isolated": isolated,
        "end_to_end": end_to_end,
    }


def _measure(
    gateway_config: dict[str, Any],
    workdir: Path,
    *,
    seconds: int,
    connections: int,
    rounds: int,
    isolated: bool,
) -> dict[str, Any]:
    gateways: dict[str, tuple[ServerProcess, int]] = {}
    try:
        for name, with_check in (("with", True), ("without", False)):
            config, admin_port, port = _variant(gateway_config, with_check=with_check)
            if isolated:
                [listener] = config["static_resources"]["listeners"]
                hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
                hcm["route_config"]["virtual_hosts"][0]["routes"] = DIRECT_ROUTES
                config["static_resources"]["clusters"] = []
            path = write_config(workdir / f"gateway-{name}.json", config)
            process = start_envoy(
                f"gateway-{name}", path, admin_port, log_path=workdir / f"gateway-{name}.log"
            )
            gateways[name] = (process, port)
            if _refuses_unknown_fields(port) != with_check:
                raise RuntimeError(f"the gateway {name} the check does not behave so")
        legs: list[dict[str, Any]] = []
        for round_ in range(rounds):
            # ABBA: neither gateway always runs first, on a warmer or fuller stack.
            order = list(gateways.items())
            for name, (process, port) in order if round_ % 2 == 0 else reversed(order):
                legs.append(_leg(name, process, port, seconds, connections))
    finally:
        for process, _ in gateways.values():
            process.stop(grace=5)
    return _summary(legs)


def _leg(
    name: str, process: ServerProcess, port: int, seconds: int, connections: int
) -> dict[str, Any]:
    before = process_seconds(process.process.pid)
    result = wrk.run(
        f"http://127.0.0.1:{port}",
        "create.lua",
        seconds=seconds,
        connections=connections,
        env={"RUN": uuid.uuid4().hex[:8], "MERCHANTS": "200", "DAYS": "30"},
    )
    cpu = process_seconds(process.process.pid) - before
    requests = max(result.requests, 1)
    return {
        "gateway": name,
        "rps": round(result.rps, 1),
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "error_pct": round(100 * (result.non_2xx + result.socket_errors) / requests, 2),
        "requests": result.requests,
        "gateway_cpu_us_per_request": round(1e6 * cpu / requests, 1),
    }


def _mean(legs: list[dict[str, Any]], name: str, key: str) -> float:
    values = [leg[key] for leg in legs if leg["gateway"] == name and leg[key] is not None]
    return sum(values) / len(values) if values else 0.0


def _summary(legs: list[dict[str, Any]]) -> dict[str, Any]:
    """Means per gateway; ratios within this run, as the machine is shared."""
    out: dict[str, Any] = {}
    for key in ("rps", "p50_ms", "p99_ms", "error_pct", "gateway_cpu_us_per_request"):
        with_check, without = _mean(legs, "with", key), _mean(legs, "without", key)
        out[f"{key}_with"] = round(with_check, 3)
        out[f"{key}_without"] = round(without, 3)
    if out["rps_without"]:
        out["rps_ratio"] = round(out["rps_with"] / out["rps_without"], 3)
    out["cpu_us_added_per_request"] = round(
        out["gateway_cpu_us_per_request_with"] - out["gateway_cpu_us_per_request_without"], 1
    )
    out["legs"] = legs
    return out
