"""The bench's baseline does the work it is credited with: idempotent, durable
creates and correct balances, directly and through its Envoy. A baseline that
skipped any of it would flatter itself in the side-by-side table."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from bench.baseline.server import Baseline


@pytest.fixture(scope="module")
def baseline(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Baseline]:
    server = Baseline(pg_admin_url, tmp_path_factory.mktemp("baseline"), uuid.uuid4().hex[:8])
    try:
        server.start()
        server.seed(
            [
                ("m1", "s1", "KIND_CREDIT", 1000, date(2025, 1, 1)),
                ("m1", "s2", "KIND_DEBIT", 300, date(2025, 1, 1)),
                ("m1", "s3", "KIND_CREDIT", 50, date(2025, 1, 2)),
                ("m2", "s1", "KIND_CREDIT", 7, date(2025, 1, 2)),
            ]
        )
        yield server
    finally:
        server.stop()


def _call(url: str, method: str = "GET", body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_balance_is_computed_over_the_whole_history(baseline: Baseline) -> None:
    for url in (baseline.url, baseline.envoy_url):
        status, found = _call(f"{url}/v1/merchants/m1/daily-balances/2025-01-02")
        assert status == 200
        fields = ("opening_balance_cents", "credits_cents", "debits_cents", "closing_balance_cents")
        assert [found[f] for f in fields] == [700, 50, 0, 750]
        assert found["lancamentos_count"] == 1


def test_a_create_is_idempotent_on_its_request_id(baseline: Baseline) -> None:
    url = f"{baseline.url}/v1/merchants/m3/lancamentos"
    entry = {"kind": "KIND_CREDIT", "amount_cents": 10, "value_date": "2025-01-03"}
    before = baseline.count()
    first = _call(url, "POST", {**entry, "request_id": "r1"})
    replay = _call(url, "POST", {**entry, "request_id": "r1"})
    assert first[0] == replay[0] == 200
    assert first[1]["lancamento_id"] == replay[1]["lancamento_id"]
    assert baseline.count() == before + 1


def test_bad_input_is_refused_naming_the_field(baseline: Baseline) -> None:
    url = f"{baseline.url}/v1/merchants/m3/lancamentos"
    status, found = _call(
        url, "POST", {"kind": "KIND_X", "amount_cents": 10, "value_date": "2025-01-03"}
    )
    assert status == 422
    fields = {tuple(error["loc"])[-1] for error in found["detail"]}
    assert {"kind", "request_id"} <= fields


def test_its_front_envoy_is_one_plain_hop(baseline: Baseline) -> None:
    status, _ = _call(f"{baseline.envoy_url}/v1/merchants/m2/daily-balances/2025-01-02")
    assert status == 200
    assert baseline.envoy is not None and baseline.envoy.alive()
