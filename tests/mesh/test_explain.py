"""`explain` states, per route class, what is retried and why."""

from __future__ import annotations

from mesh.explain import explain
from mesh.policy import MeshPolicy


def section(text: str, title: str) -> str:
    """One route class' block: from its title to the next blank line."""
    start = text.index(f"  {title}\n")
    end = text.find("\n\n", start)
    return text[start : end if end != -1 else len(text)]


def test_per_class_retry_decisions(policy: MeshPolicy) -> None:
    text = explain(policy, {"lancamentos": 1, "consolidado": 2})
    writes = section(text, "route class writes")
    assert "retried          yes: idempotent — request_id is an idempotency key" in writes
    assert "up to 3 (1 + 2 retries, upstream default)" in writes
    importing = section(text, "route class import")
    assert "no: not idempotent — client streaming" in importing
    feed = section(text, "route class change-feed")
    assert "timeout     none (0s)" in feed
    assert "no: not idempotent" in feed
    ingest = section(text, "route class ingest")
    assert "this class" in ingest
    assert "mesh only (not routed by the gateway)" in ingest
    reads = section(text, "route class reads")
    assert "each retry prefers a replica not tried yet" in reads


def test_circuit_breaker_outlier_and_rate_limit_shown(policy: MeshPolicy) -> None:
    text = explain(policy, {"consolidado": 2}, "consolidado")
    assert text.startswith("consolidado (Istio host 'consolidado', 2 replica(s))")
    assert "lancamentos" not in text.split("\n")[0]
    assert "maxRequests 512" in text
    assert "at most 100% (2 of 2 replicas)" in text
    assert "below 50% healthy, balanced over every host (panic)" in text
    assert "5000/s, burst 10000 (per gateway Envoy)" in text
    assert "never retried" in section(text, "other methods")
