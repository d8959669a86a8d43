"""The chart's gateway EnvoyFilters, run by a real Envoy in front of the real services.

The cluster gateway gets its transcoder (with the descriptor set embedded as
`proto_descriptor_bin`) and its rate limit only from the chart's EnvoyFilters. Here they
are applied the way Istio applies them (tests/support/istio_pilot.py) to the local gateway with its
own transcoder and rate limit taken out, and that Envoy serves REST: so the chart's
filters are proven to load, transcode and limit, not only to look like the local ones.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

from mesh.render.bundle import LocalEnvoy
from mesh.render.gateway import TRANSCODER
from mesh.render.rate_limit import LOCAL_RATE_LIMIT
from tests.support.chart import render_chart
from tests.support.istio_pilot import apply_gateway_envoy_filters
from tests.support.rest import http_request
from tests.support.stack import LocalStack
from tooling.devstack.envoy import stats
from tooling.devstack.processes import free_port
from tooling.stack.envoys import start_all, stop_all, wait_membership

READS = "mesh.upstreams.consolidado.routeClasses.reads.rateLimit"


def chart_gateway(
    local: dict[str, Any], envoy_filters: list[dict[str, Any]], host: str
) -> LocalEnvoy:
    config = copy.deepcopy(local)
    port, admin_port = free_port(), free_port()
    listener = config["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = port
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    # What Istio's gateway has before any EnvoyFilter: no transcoder, no rate limit.
    filters = [f for f in hcm["http_filters"] if f["name"] not in (TRANSCODER, LOCAL_RATE_LIMIT)]
    [virtual_host] = hcm["route_config"]["virtual_hosts"]
    # Istio names a gateway's virtual hosts "<host>:<port>", and the chart's route patches
    # name them so.
    virtual_host["name"] = f"{host}:443"
    for route in virtual_host["routes"]:
        route.get("typed_per_filter_config", {}).pop(LOCAL_RATE_LIMIT, None)
    apply_gateway_envoy_filters(envoy_filters, filters, [virtual_host])
    hcm["http_filters"] = filters
    return LocalEnvoy("chart-gateway", config, port, admin_port)


async def test_the_charts_transcoder_and_rate_limit_work_in_envoy(
    gateway: LocalStack, merchant: str, tmp_path: Path
) -> None:
    # One token a second and a burst of two: the third read in a row is refused.
    rendered = render_chart(sets=[f"{READS}.tokensPerSecond=1", f"{READS}.burst=2"])
    [host] = rendered.get("Gateway", "caixa-gateway")["spec"]["servers"][0]["hosts"]
    envoy = chart_gateway(gateway.config, rendered.of_kind("EnvoyFilter"), host)
    processes = await start_all([envoy], tmp_path)
    try:
        await wait_membership(envoy.admin_port, {"consolidado": 2}, within=15)
        url = f"http://127.0.0.1:{envoy.listen_port}"
        path = f"/v1/merchants/{merchant}/daily-balances/2024-01-02"

        first = await asyncio.to_thread(http_request, url, "GET", path, None)
        assert first.status == 200, first.body
        # The chart's print options: proto field names, zero values printed.
        assert first.body["merchant_id"] == merchant
        assert first.body["lancamentos_count"] == "0"  # int64 prints as a string

        # The chart's request validation: an unknown query parameter is refused.
        unknown = await asyncio.to_thread(http_request, url, "GET", f"{path}?colour=red", None)
        assert unknown.status == 400

        replies = [
            (await asyncio.to_thread(http_request, url, "GET", path, None)).status for _ in range(4)
        ]
        assert 429 in replies, replies
        limited = stats(envoy.admin_port, "http_local_rate_limit.rate_limited")
        assert limited.get("consolidado_reads.http_local_rate_limit.rate_limited", 0) >= 1
    finally:
        await asyncio.to_thread(stop_all, processes)
