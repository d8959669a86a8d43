"""Every REST route of the contract through the gateway's transcoder, errors included.

Status codes and JSON bodies as a REST client sees them: int64 as strings, enums by name,
proto field names, zeros printed, errors as google.rpc.Status with the HTTP status Envoy
maps the gRPC code to.
"""

from __future__ import annotations

import re
import urllib.parse
import uuid
from typing import Any

import pytest

from tests.support.rest import Reply, rest
from tests.support.stack import LocalStack

pytestmark = pytest.mark.slow

BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
LANCAMENTO_FIELDS = {
    "lancamento_id",
    "merchant_id",
    "kind",
    "amount_cents",
    "currency",
    "value_date",
    "description",
    "request_id",
    "created_at",
    "sequence",
    "reverses_lancamento_id",
    "reversed_by_lancamento_id",
}


def lancamentos(merchant: str) -> str:
    return f"/v1/merchants/{merchant}/lancamentos"


def balances(merchant: str) -> str:
    return f"/v1/merchants/{merchant}/daily-balances"


def query(path: str, **params: str | int) -> str:
    return f"{path}?{urllib.parse.urlencode(params)}"


def new_entry(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "kind": "KIND_CREDIT",
        "amount_cents": "1050",
        "value_date": "2026-03-10",
        "description": "venda balcão",
        "request_id": str(uuid.uuid4()),
    }
    body.update(overrides)
    return body


async def create(gateway: LocalStack, merchant: str, **overrides: object) -> dict[str, Any]:
    reply = await rest(gateway, "POST", lancamentos(merchant), new_entry(**overrides))
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


def assert_error(reply: Reply, http_status: int, code: int) -> dict[str, Any]:
    """A google.rpc.Status JSON body with this HTTP status and gRPC code."""
    assert reply.content_type.startswith("application/json"), (reply.content_type, reply.body)
    assert reply.status == http_status, reply.body
    assert reply.body["code"] == code, reply.body
    assert set(reply.body) == {"code", "message", "details"}, reply.body
    assert isinstance(reply.body["message"], str)
    assert reply.body["message"]
    body: dict[str, Any] = reply.body
    return body


def violations(reply: Reply) -> dict[str, str]:
    """400 INVALID_ARGUMENT whose one detail is a BadRequest; its violations by field."""
    body = assert_error(reply, 400, 3)
    assert len(body["details"]) == 1, body
    detail = body["details"][0]
    assert detail["@type"] == BAD_REQUEST_TYPE, detail
    found: dict[str, str] = {}
    for violation in detail["field_violations"]:
        assert violation["description"], violation
        found[violation["field"]] = violation["description"]
    return found


# --- create -------------------------------------------------------------------------------


async def test_create_prints_int64_as_strings_and_enums_by_name(
    gateway: LocalStack, merchant: str
) -> None:
    request_id = str(uuid.uuid4())
    reply = await rest(
        gateway,
        "POST",
        lancamentos(merchant),
        # A JSON number is accepted for int64 on the way in; strings come back out.
        new_entry(amount_cents=1050, request_id=request_id),
    )
    assert reply.status == 200, reply.body
    assert reply.content_type.startswith("application/json")
    entry = reply.body
    assert set(entry) == LANCAMENTO_FIELDS
    assert str(uuid.UUID(entry["lancamento_id"])) == entry["lancamento_id"]
    assert entry["merchant_id"] == merchant
    assert entry["kind"] == "KIND_CREDIT"
    assert entry["amount_cents"] == "1050"
    assert entry["currency"] == "BRL"
    assert entry["value_date"] == "2026-03-10"
    assert entry["description"] == "venda balcão"
    assert entry["request_id"] == request_id
    assert RFC3339_UTC.match(entry["created_at"]), entry["created_at"]
    assert isinstance(entry["sequence"], str)
    assert int(entry["sequence"]) > 0
    # Zeros and empty strings are printed, not left out.
    assert entry["reverses_lancamento_id"] == entry["reversed_by_lancamento_id"] == ""


async def test_create_debit_with_int64_string_amount(gateway: LocalStack, merchant: str) -> None:
    entry = await create(
        gateway, merchant, kind="KIND_DEBIT", amount_cents="1000000000000", currency="BRL"
    )
    assert (entry["kind"], entry["amount_cents"]) == ("KIND_DEBIT", "1000000000000")


async def test_same_post_twice_returns_the_same_entry(gateway: LocalStack, merchant: str) -> None:
    body = new_entry()
    first = await rest(gateway, "POST", lancamentos(merchant), body)
    again = await rest(gateway, "POST", lancamentos(merchant), body)
    assert (first.status, again.status) == (200, 200)
    assert again.body == first.body
    listed = await rest(gateway, "GET", lancamentos(merchant))
    assert listed.status == 200
    assert listed.body["lancamentos"] == [first.body]


async def test_reused_request_id_with_another_payload_is_409(
    gateway: LocalStack, merchant: str
) -> None:
    first = await create(gateway, merchant, request_id="key-1")
    reply = await rest(
        gateway, "POST", lancamentos(merchant), new_entry(request_id="key-1", amount_cents="999")
    )
    body = assert_error(reply, 409, 6)  # ALREADY_EXISTS
    assert "key-1" in body["message"]
    assert first["lancamento_id"] in body["message"]
    assert body["details"] == []


async def test_every_bad_field_is_named(gateway: LocalStack, merchant: str) -> None:
    reply = await rest(
        gateway,
        "POST",
        lancamentos(merchant),
        new_entry(kind="KIND_UNSPECIFIED", amount_cents="0", value_date="2026-02-30"),
    )
    found = violations(reply)
    assert set(found) == {"kind", "amount_cents", "value_date"}
    assert "positive" in found["amount_cents"]
    assert "not a real calendar day" in found["value_date"]
    # Every field at once, each one named.
    reply = await rest(
        gateway,
        "POST",
        lancamentos(merchant),
        {
            "amount_cents": "-5",
            "currency": "USD",
            "value_date": "10/03/2026",
            "description": "d" * 256,
            "request_id": "",
        },
    )
    assert set(violations(reply)) == {
        "kind",
        "amount_cents",
        "currency",
        "value_date",
        "description",
        "request_id",
    }
    listed = await rest(gateway, "GET", lancamentos(merchant))
    assert listed.body["lancamentos"] == []


async def test_unknown_kind_number_is_a_field_violation(gateway: LocalStack, merchant: str) -> None:
    reply = await rest(gateway, "POST", lancamentos(merchant), new_entry(kind=7))
    assert list(violations(reply)) == ["kind"]


async def test_bad_merchant_in_the_path_is_a_field_violation(gateway: LocalStack) -> None:
    reply = await rest(gateway, "POST", lancamentos("has%20space"), new_entry())
    assert list(violations(reply)) == ["merchant_id"]
    reply = await rest(gateway, "GET", lancamentos("x" * 65))
    assert list(violations(reply)) == ["merchant_id"]


async def test_json_errors_name_the_field_like_the_services(
    gateway: LocalStack, merchant: str
) -> None:
    """The gateway's REST check answers what the transcoder would reject, in the
    services' shape: a BadRequest naming the field. JSON that is no JSON names none."""
    reply = await rest(gateway, "POST", lancamentos(merchant), new_entry(kind="KIND_BOGUS"))
    found = violations(reply)
    assert list(found) == ["kind"] and "KIND_BOGUS" in found["kind"], found
    assert "KIND_CREDIT" in found["kind"]
    reply = await rest(gateway, "POST", lancamentos(merchant), new_entry(amount_cents="12x"))
    assert list(violations(reply)) == ["amount_cents"]
    reply = await rest(gateway, "POST", lancamentos(merchant), '{"kind": "KIND_CREDIT",')
    body = assert_error(reply, 400, 3)
    assert body["details"] == [] and "not valid JSON" in body["message"], body
    listed = await rest(gateway, "GET", lancamentos(merchant))
    assert listed.body["lancamentos"] == []


async def test_the_path_names_the_merchant_not_the_body(gateway: LocalStack, merchant: str) -> None:
    """A body field that contradicts a path binding must not silently replace it: the
    URL is what a client (and any path-based authorization) addressed."""
    other = f"{merchant}-other"
    reply = await rest(
        gateway, "POST", lancamentos(merchant), new_entry(merchant_id=other, request_id="b1")
    )
    assert "merchant_id" in assert_error(reply, 400, 3)["message"], reply.body
    # Nothing was written for either merchant.
    for who in (merchant, other):
        listed = await rest(gateway, "GET", lancamentos(who))
        assert (listed.status, listed.body["lancamentos"]) == (200, []), who
    # The same value in both places is no conflict.
    same = await create(gateway, merchant, merchant_id=merchant)
    assert same["merchant_id"] == merchant


async def test_reverse_body_cannot_retarget_the_entry(gateway: LocalStack, merchant: str) -> None:
    target = await create(gateway, merchant)
    bystander = await create(gateway, merchant)
    reply = await rest(
        gateway,
        "POST",
        f"{lancamentos(merchant)}/{target['lancamento_id']}:reverse",
        {"lancamento_id": bystander["lancamento_id"], "request_id": "rv-1"},
    )
    assert list(violations(reply)) == ["lancamento_id"], reply.body
    for entry in (target, bystander):
        got = await rest(gateway, "GET", f"{lancamentos(merchant)}/{entry['lancamento_id']}")
        assert got.body["reversed_by_lancamento_id"] == "", got.body


# --- get ----------------------------------------------------------------------------------


async def test_get_returns_the_created_entry(gateway: LocalStack, merchant: str) -> None:
    created = await create(gateway, merchant)
    reply = await rest(gateway, "GET", f"{lancamentos(merchant)}/{created['lancamento_id']}")
    assert reply.status == 200
    assert reply.body == created


async def test_get_unknown_is_404(gateway: LocalStack, merchant: str) -> None:
    unknown = str(uuid.uuid4())
    reply = await rest(gateway, "GET", f"{lancamentos(merchant)}/{unknown}")
    body = assert_error(reply, 404, 5)  # NOT_FOUND
    assert unknown in body["message"]
    assert body["details"] == []
    # Another merchant's entry does not exist for this one.
    created = await create(gateway, merchant)
    reply = await rest(gateway, "GET", f"{lancamentos(merchant + 'x')}/{created['lancamento_id']}")
    assert_error(reply, 404, 5)


async def test_get_malformed_id_is_a_field_violation(gateway: LocalStack, merchant: str) -> None:
    reply = await rest(gateway, "GET", f"{lancamentos(merchant)}/not-a-uuid")
    assert list(violations(reply)) == ["lancamento_id"]


# --- list ---------------------------------------------------------------------------------


async def test_list_filters_and_pages(gateway: LocalStack, merchant: str) -> None:
    made = [
        await create(gateway, merchant, value_date=day, kind=kind, amount_cents=str(cents))
        for day, kind, cents in [
            ("2026-03-12", "KIND_CREDIT", 100),
            ("2026-03-10", "KIND_DEBIT", 200),
            ("2026-03-11", "KIND_CREDIT", 300),
            ("2026-03-10", "KIND_CREDIT", 400),
            ("2026-03-11", "KIND_CREDIT", 500),
            ("2026-03-09", "KIND_CREDIT", 600),
            ("2026-03-13", "KIND_CREDIT", 700),
        ]
    ]
    # By value date, then by recording order.
    everything = await rest(gateway, "GET", lancamentos(merchant))
    assert everything.status == 200
    assert [e["amount_cents"] for e in everything.body["lancamentos"]] == [
        "600",
        "200",
        "400",
        "300",
        "500",
        "100",
        "700",
    ]
    assert everything.body["next_page_token"] == ""
    assert sorted(everything.body["lancamentos"], key=lambda e: e["amount_cents"]) == sorted(
        made, key=lambda e: e["amount_cents"]
    )

    filters: dict[str, str | int] = {
        "from_date": "2026-03-10",
        "to_date": "2026-03-12",
        "kind": "KIND_CREDIT",
        "page_size": 2,
    }
    pages: list[list[str]] = []
    token = ""
    while True:
        params = {**filters, **({"page_token": token} if token else {})}
        reply = await rest(gateway, "GET", query(lancamentos(merchant), **params))
        assert reply.status == 200, reply.body
        assert set(reply.body) == {"lancamentos", "next_page_token"}
        pages.append([e["amount_cents"] for e in reply.body["lancamentos"]])
        assert all(e["kind"] == "KIND_CREDIT" for e in reply.body["lancamentos"])
        token = reply.body["next_page_token"]
        if not token:
            break
        assert len(pages) < 5, pages
    assert [a for page in pages for a in page] == ["400", "300", "500", "100"]
    assert [len(p) for p in pages[:2]] == [2, 2]

    debits = await rest(gateway, "GET", query(lancamentos(merchant), kind="KIND_DEBIT"))
    assert [e["amount_cents"] for e in debits.body["lancamentos"]] == ["200"]
    none = await rest(
        gateway, "GET", query(lancamentos(merchant), from_date="2027-01-01", to_date="2027-01-31")
    )
    assert none.status == 200
    assert none.body == {"lancamentos": [], "next_page_token": ""}


async def test_list_bad_query_values(gateway: LocalStack, merchant: str) -> None:
    reply = await rest(
        gateway, "GET", query(lancamentos(merchant), page_size=1001, from_date="2026-13-01")
    )
    assert set(violations(reply)) == {"page_size", "from_date"}
    reply = await rest(gateway, "GET", query(lancamentos(merchant), page_token="garbage"))
    assert list(violations(reply)) == ["page_token"]
    # Values the transcoder cannot put in the request: Envoy's own 400.
    reply = await rest(gateway, "GET", query(lancamentos(merchant), kind="KIND_BOGUS"))
    assert "KIND_BOGUS" in assert_error(reply, 400, 3)["message"]
    reply = await rest(gateway, "GET", query(lancamentos(merchant), page_size="ten"))
    assert "page_size" in assert_error(reply, 400, 3)["message"]


async def test_page_token_of_other_filters_is_rejected(gateway: LocalStack, merchant: str) -> None:
    for _ in range(3):
        await create(gateway, merchant)
    first = await rest(gateway, "GET", query(lancamentos(merchant), page_size=1))
    token = first.body["next_page_token"]
    assert token
    reply = await rest(
        gateway,
        "GET",
        query(lancamentos(merchant), page_size=1, kind="KIND_DEBIT", page_token=token),
    )
    assert list(violations(reply)) == ["page_token"]


# --- reverse ------------------------------------------------------------------------------


async def test_reverse_links_both_entries_and_retries_idempotently(
    gateway: LocalStack, merchant: str
) -> None:
    original = await create(gateway, merchant, amount_cents="700")
    path = f"{lancamentos(merchant)}/{original['lancamento_id']}:reverse"
    body = {"request_id": "rev-1", "value_date": "2026-03-11"}
    reply = await rest(gateway, "POST", path, body)
    assert reply.status == 200, reply.body
    reversal = reply.body
    assert set(reversal) == LANCAMENTO_FIELDS
    assert reversal["kind"] == "KIND_DEBIT"
    assert reversal["amount_cents"] == "700"
    assert reversal["value_date"] == "2026-03-11"
    assert reversal["request_id"] == "rev-1"
    assert reversal["reverses_lancamento_id"] == original["lancamento_id"]
    assert reversal["reversed_by_lancamento_id"] == ""
    assert reversal["description"] == f"Estorno de {original['lancamento_id']}"
    assert int(reversal["sequence"]) > int(original["sequence"])

    again = await rest(gateway, "POST", path, body)
    assert (again.status, again.body) == (200, reversal)

    got = await rest(gateway, "GET", f"{lancamentos(merchant)}/{original['lancamento_id']}")
    assert got.body == {**original, "reversed_by_lancamento_id": reversal["lancamento_id"]}


async def test_second_reversal_is_failed_precondition(gateway: LocalStack, merchant: str) -> None:
    original = await create(gateway, merchant)
    path = f"{lancamentos(merchant)}/{original['lancamento_id']}:reverse"
    first = await rest(gateway, "POST", path, {"request_id": "rev-a"})
    assert first.status == 200, first.body
    reply = await rest(gateway, "POST", path, {"request_id": "rev-b"})
    body = assert_error(reply, 400, 9)  # FAILED_PRECONDITION
    assert first.body["lancamento_id"] in body["message"]
    assert body["details"] == []
    # A reversal is never reversed either.
    reversal_path = f"{lancamentos(merchant)}/{first.body['lancamento_id']}:reverse"
    reply = await rest(gateway, "POST", reversal_path, {"request_id": "rev-c"})
    assert_error(reply, 400, 9)


async def test_reverse_errors(gateway: LocalStack, merchant: str) -> None:
    unknown = str(uuid.uuid4())
    reply = await rest(
        gateway, "POST", f"{lancamentos(merchant)}/{unknown}:reverse", {"request_id": "r"}
    )
    assert_error(reply, 404, 5)
    original = await create(gateway, merchant)
    path = f"{lancamentos(merchant)}/{original['lancamento_id']}:reverse"
    reply = await rest(gateway, "POST", path, {"request_id": "", "value_date": "2026-02-30"})
    assert set(violations(reply)) == {"request_id", "value_date"}
    # The reversal's request_id reused with another payload.
    assert (await rest(gateway, "POST", path, {"request_id": "rev-x"})).status == 200
    other = await create(gateway, merchant)
    reply = await rest(
        gateway,
        "POST",
        f"{lancamentos(merchant)}/{other['lancamento_id']}:reverse",
        {"request_id": "rev-x"},
    )
    assert_error(reply, 409, 6)


# --- balances -----------------------------------------------------------------------------


def zero_day(merchant: str, day: str, opening: int) -> dict[str, Any]:
    return {
        "merchant_id": merchant,
        "date": day,
        "currency": "BRL",
        "credits_cents": "0",
        "debits_cents": "0",
        "net_cents": "0",
        "opening_balance_cents": str(opening),
        "closing_balance_cents": str(opening),
        "lancamentos_count": "0",
    }


async def test_daily_balances_after_delivery(gateway: LocalStack, merchant: str) -> None:
    credit = await create(gateway, merchant, value_date="2026-04-10", amount_cents="1000")
    debit = await create(
        gateway, merchant, value_date="2026-04-10", amount_cents="300", kind="KIND_DEBIT"
    )
    late = await create(gateway, merchant, value_date="2026-04-12", amount_cents="50")
    await gateway.mesh.wait_delivered(within_seconds=10)

    reply = await rest(gateway, "GET", f"{balances(merchant)}/2026-04-10")
    assert reply.status == 200, reply.body
    day = reply.body
    as_of = max(credit["created_at"], debit["created_at"])
    assert day == {
        "merchant_id": merchant,
        "date": "2026-04-10",
        "currency": "BRL",
        "credits_cents": "1000",
        "debits_cents": "300",
        "net_cents": "700",
        "opening_balance_cents": "0",
        "closing_balance_cents": "700",
        "lancamentos_count": "2",
        "as_of": as_of,
    }

    reply = await rest(
        gateway, "GET", query(balances(merchant), from_date="2026-04-09", to_date="2026-04-13")
    )
    assert reply.status == 200, reply.body
    assert set(reply.body) == {"daily_balances"}
    days = reply.body["daily_balances"]
    # Dense: every calendar day, carried over where nothing happened.
    assert [d["date"] for d in days] == [f"2026-04-{n:02d}" for n in range(9, 14)]
    assert days[0] == zero_day(merchant, "2026-04-09", 0)  # no entry counts yet: no as_of
    assert days[1] == day
    assert days[2] == {**zero_day(merchant, "2026-04-11", 700), "as_of": as_of}
    assert days[3] == {
        **zero_day(merchant, "2026-04-12", 700),
        "credits_cents": "50",
        "net_cents": "50",
        "closing_balance_cents": "750",
        "lancamentos_count": "1",
        "as_of": late["created_at"],
    }
    assert days[4] == {**zero_day(merchant, "2026-04-13", 750), "as_of": late["created_at"]}


async def test_balance_of_a_merchant_without_entries_is_zero(
    gateway: LocalStack, merchant: str
) -> None:
    reply = await rest(gateway, "GET", f"{balances(merchant)}/2026-04-10")
    assert (reply.status, reply.body) == (200, zero_day(merchant, "2026-04-10", 0))


async def test_balance_errors_name_each_field(gateway: LocalStack, merchant: str) -> None:
    reply = await rest(gateway, "GET", f"{balances(merchant)}/2026-02-30")
    assert list(violations(reply)) == ["date"]
    reply = await rest(gateway, "GET", f"{balances('bad%20merchant')}/2026-13-01")
    assert set(violations(reply)) == {"merchant_id", "date"}
    reply = await rest(
        gateway, "GET", query(balances(merchant), from_date="2026-04-12", to_date="2026-04-10")
    )
    assert list(violations(reply)) == ["from_date"]
    reply = await rest(gateway, "GET", query(balances(merchant), from_date="2026-04-12"))
    assert list(violations(reply)) == ["to_date"]
    reply = await rest(gateway, "GET", balances(merchant))
    assert set(violations(reply)) == {"from_date", "to_date"}
    reply = await rest(
        gateway, "GET", query(balances(merchant), from_date="2025-01-01", to_date="2026-01-02")
    )
    assert "366" in violations(reply)["from_date"]


# --- what the gateway answers itself ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nothing"),
        ("GET", "/"),
        ("GET", "/v1/merchants/m1"),
        ("DELETE", "/v1/merchants/m1/lancamentos/0b7e9c3a-5d1f-4e8a-9c2b-6f1d2e3a4b5c"),
        ("PUT", "/v1/merchants/m1/lancamentos"),
        ("POST", "/v1/merchants/m1/lancamentos/0b7e9c3a-5d1f-4e8a-9c2b-6f1d2e3a4b5c:explode"),
        ("POST", "/v1/merchants/m1/daily-balances/2026-04-10"),
        ("GET", "/v2/merchants/m1/lancamentos"),
    ],
)
async def test_unknown_paths_are_404(gateway: LocalStack, method: str, path: str) -> None:
    reply = await rest(gateway, method, path, {} if method in ("POST", "PUT") else None)
    body = assert_error(reply, 404, 5)
    assert body["details"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/merchants/m1/lancamentos?colour=red",
        "/v1/merchants/m1/lancamentos?page_size=2&pageSize=3&colour=red",
        "/v1/merchants/m1/lancamentos/0b7e9c3a-5d1f-4e8a-9c2b-6f1d2e3a4b5c?colour=red",
        "/v1/merchants/m1/daily-balances/2026-04-10?colour=red",
        "/v1/merchants/m1/daily-balances?from_date=2026-04-01&to_date=2026-04-02&colour=red",
    ],
)
async def test_unknown_query_parameters_are_400(gateway: LocalStack, path: str) -> None:
    reply = await rest(gateway, "GET", path)
    found = violations(reply)
    assert "colour" in found and "unknown query parameter" in found["colour"], found


async def test_unknown_query_parameter_on_a_post_is_400(gateway: LocalStack, merchant: str) -> None:
    reply = await rest(gateway, "POST", f"{lancamentos(merchant)}?colour=red", new_entry())
    assert "colour" in assert_error(reply, 400, 3)["message"]
    listed = await rest(gateway, "GET", lancamentos(merchant))
    assert listed.body["lancamentos"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/consolidado.v1.ConsolidadoIngestService/ApplyLancamentos",
        "/consolidado.v1.ConsolidadoIngestService/Reconcile",
    ],
)
async def test_ingest_service_has_no_rest_route(gateway: LocalStack, path: str) -> None:
    reply = await rest(gateway, "POST", path, {"lancamentos": []})
    assert_error(reply, 404, 5)
