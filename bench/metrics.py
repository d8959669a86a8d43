"""Reads the services' Prometheus counters: successes are counted by grpc-status."""

from __future__ import annotations

import urllib.request
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families


def handled_by_code(metrics_addresses: list[str], method: str) -> Counter[str]:
    """Sum over servers of `grpc_server_handled_total` of `method`
    (`/package.Service/Method`), by grpc_code."""
    service, _, name = method.lstrip("/").partition("/")
    totals: Counter[str] = Counter()
    for address in metrics_addresses:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            if family.name != "grpc_server_handled":
                continue
            for sample in family.samples:
                labels = sample.labels
                ours = (labels.get("grpc_service"), labels.get("grpc_method")) == (service, name)
                if sample.name.endswith("_total") and ours:
                    totals[labels["grpc_code"]] += int(sample.value)
    return totals


def delta(after: Counter[str], before: Counter[str]) -> dict[str, int]:
    return {code: after[code] - before[code] for code in after if after[code] - before[code]}
