"""The chart's per-merchant rate limit is the local gateway's, which
tests/mesh/faults/test_merchant_rate_limit.py runs in Envoy: the same filter, fed by
the same claim header (its place in the chain: tests/helm/test_transcoder_descriptor.py)."""

from __future__ import annotations

from typing import Any

from mesh.policy import LocalJwt
from mesh.render.gateway import jwt_authn_filter
from mesh.render.rate_limit import (
    MERCHANTS_HEADER,
    merchant_filter,
)
from mesh.values import load_policy
from tests.support.chart import render_chart
from tests.support.paths import VALUES

LIMIT = "mesh.gateway.merchantRateLimit"
SETS = [f"{LIMIT}.tokensPerSecond=40", f"{LIMIT}.burst=75", f"{LIMIT}.maxMerchants=123"]


def _gateway_jwt_rule(objects: Any) -> dict[str, Any]:
    [rule] = objects.get("RequestAuthentication", "caixa-caixa-jwt")["spec"]["jwtRules"]
    return dict(rule)


def test_the_charts_filter_is_the_local_one() -> None:
    rendered = render_chart(sets=SETS)
    [patch] = rendered.get("EnvoyFilter", "caixa-caixa-merchant-ratelimit")["spec"]["configPatches"]
    policy = load_policy([VALUES], SETS)
    assert policy.gateway.merchant_rate_limit is not None
    # 40/s: a refill of 2 tokens every 50 ms, as mesh.render.rate_limit.token_bucket.
    assert patch["patch"]["value"] == merchant_filter(policy.gateway.merchant_rate_limit)
    # Fed by the verified claim, in the header the local jwt_authn fills.
    assert _gateway_jwt_rule(rendered)["outputClaimToHeaders"] == [
        {"header": MERCHANTS_HEADER, "claim": "merchants"}
    ]
    jwt = LocalJwt.model_validate({"issuer": "i", "audiences": ["a"], "jwksFile": "/j"})
    local = jwt_authn_filter(jwt, merchants_header=True)
    [provider] = local["typed_config"]["providers"].values()
    assert provider["claim_to_headers"] == [
        {"header_name": MERCHANTS_HEADER, "claim_name": "merchants"}
    ]
    # The workloads' RequestAuthentication copies nothing: only the gateway limits.
    for rule in rendered.get("RequestAuthentication", "caixa-workload-jwt")["spec"]["jwtRules"]:
        assert "outputClaimToHeaders" not in rule


def test_null_turns_it_off_in_both_places() -> None:
    rendered = render_chart(sets=[f"{LIMIT}=null"])
    assert "caixa-caixa-merchant-ratelimit" not in rendered.names("EnvoyFilter")
    assert "outputClaimToHeaders" not in _gateway_jwt_rule(rendered)
