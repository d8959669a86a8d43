"""Reads the services' Prometheus counters: successes are counted by grpc-status."""

from __future__ import annotations

import urllib.request
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families


def handled_by_code(metrics_addresses: list[str], method: str) -> Counter[str]:
    """Sum over servers of `caixa_grpc_server_handled_total{method=…}` by code."""
    totals: Counter[str] = Counter()
    for address in metrics_addresses:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            if family.name != "caixa_grpc_server_handled":
                continue
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("method") == method:
                    totals[sample.labels["code"]] += int(sample.value)
    return totals


def delta(after: Counter[str], before: Counter[str]) -> dict[str, int]:
    return {code: after[code] - before[code] for code in after if after[code] - before[code]}
