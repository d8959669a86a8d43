"""Envoy's local rate limit filter: one token bucket per route class that asks for one."""

from __future__ import annotations

from mesh.envoy_fields import JSON
from mesh.policy import MerchantRateLimit, RateLimit

LOCAL_RATE_LIMIT = "envoy.filters.http.local_ratelimit"
LOCAL_RATE_LIMIT_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
)
# Envoy refuses refill intervals under 50ms; the first one that makes the refill a whole
# number of tokens wins, so the rate is exact rather than rounded.
_FILL_INTERVALS_MS = (50, 100, 200, 250, 500, 1000)


def token_bucket(limit: RateLimit) -> JSON:
    for interval_ms in _FILL_INTERVALS_MS:
        tokens = limit.tokens_per_second * interval_ms
        if tokens % 1000 == 0:
            return {
                "max_tokens": limit.burst,
                "tokens_per_fill": tokens // 1000,
                "fill_interval": f"{interval_ms / 1000:.3f}s",
            }
    raise AssertionError("1000ms always divides evenly")  # pragma: no cover


def hcm_filter(stat_prefix: str) -> JSON:
    """The filter in the chain; without a bucket it limits nothing until a route asks."""
    return {
        "name": LOCAL_RATE_LIMIT,
        "typed_config": {"@type": LOCAL_RATE_LIMIT_TYPE, "stat_prefix": stat_prefix},
    }


def _always(runtime_key: str) -> JSON:
    return {
        "runtime_key": runtime_key,
        "default_value": {"numerator": 100, "denominator": "HUNDRED"},
    }


def per_route(stat_prefix: str, limit: RateLimit) -> JSON:
    """typed_per_filter_config for one route: 429 for REST, RESOURCE_EXHAUSTED for gRPC.

    Stats: `<stat_prefix>.http_local_rate_limit.{enabled,enforced,rate_limited,ok}`."""
    return {
        LOCAL_RATE_LIMIT: {
            "@type": LOCAL_RATE_LIMIT_TYPE,
            "stat_prefix": stat_prefix,
            "token_bucket": token_bucket(limit),
            "filter_enabled": _always(f"{stat_prefix}.enabled"),
            "filter_enforced": _always(f"{stat_prefix}.enforced"),
            # Envoy's default for gRPC is UNAVAILABLE, which clients would retry.
            "rate_limited_as_resource_exhausted": True,
            "response_headers_to_add": [
                {
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    "header": {"key": "x-local-rate-limit", "value": "true"},
                }
            ],
        }
    }


MERCHANT_RATE_LIMIT = "caixa.merchant_rate_limit"
MERCHANT_STAT_PREFIX = "gateway_merchant_rate_limit"
# Where jwt_authn copies the verified `merchants` claim (a list, so as base64 of its
# JSON). jwt_authn's provider drops any copy a client sent, and runs on every path
# (the open ones allow a missing token), so the key cannot be forged; the route
# config removes it before the services see it.
MERCHANTS_HEADER = "x-caixa-jwt-merchants"
_MERCHANTS_KEY = "merchants"


def merchant_filter(limit: MerchantRateLimit) -> JSON:
    """A second local rate limit, after jwt_authn: one bucket per claim value (a
    descriptor with an empty value is Envoy's dynamic, per-value descriptor). A
    request without the header (no token: health checks, /openapi.json) matches no
    descriptor and, with no default bucket, is never limited here.

    Stats: `gateway_merchant_rate_limit.http_local_rate_limit.{ok,rate_limited}`."""
    return {
        "name": MERCHANT_RATE_LIMIT,
        "typed_config": {
            "@type": LOCAL_RATE_LIMIT_TYPE,
            "stat_prefix": MERCHANT_STAT_PREFIX,
            "filter_enabled": _always(f"{MERCHANT_STAT_PREFIX}.enabled"),
            "filter_enforced": _always(f"{MERCHANT_STAT_PREFIX}.enforced"),
            "always_consume_default_token_bucket": False,
            "max_dynamic_descriptors": limit.max_merchants,
            "descriptors": [
                {
                    "entries": [{"key": _MERCHANTS_KEY, "value": ""}],
                    "token_bucket": token_bucket(limit),
                }
            ],
            "rate_limits": [
                {
                    "actions": [
                        {
                            "request_headers": {
                                "header_name": MERCHANTS_HEADER,
                                "descriptor_key": _MERCHANTS_KEY,
                            }
                        }
                    ]
                }
            ],
            "rate_limited_as_resource_exhausted": True,
            "response_headers_to_add": [
                {
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    "header": {"key": "x-local-rate-limit", "value": "merchant"},
                }
            ],
        },
    }
