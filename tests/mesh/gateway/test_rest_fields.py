"""The gateway rejects REST fields the transcoder would drop, naming each one.

Envoy's transcoder follows the proto3 JSON mapping and drops unknown body fields:
`"date"` instead of `value_date` used to book today with 200. The gateway's Lua check
(mesh.render.rest_fields) answers 400 with the services' BadRequest shape instead, and
must never refuse what the transcoder accepts.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.mesh.gateway.test_rest import (
    assert_error,
    create,
    lancamentos,
    new_entry,
    violations,
)
from tests.support.rest import http_request, rest
from tests.support.stack import LocalStack

pytestmark = pytest.mark.slow


async def nothing_booked(gateway: LocalStack, merchant: str) -> None:
    listed = await rest(gateway, "GET", lancamentos(merchant))
    assert (listed.status, listed.body["lancamentos"]) == (200, []), listed.body


async def test_an_unknown_body_field_is_400_naming_it(gateway: LocalStack, merchant: str) -> None:
    body = new_entry()
    del body["value_date"]
    body["date"] = "2026-03-05"
    found = violations(await rest(gateway, "POST", lancamentos(merchant), body))
    assert list(found) == ["date"]
    assert "unknown field" in found["date"] and "value_date" in found["date"], found
    await nothing_booked(gateway, merchant)


async def test_every_bad_field_is_named_at_once(gateway: LocalStack, merchant: str) -> None:
    body = new_entry(kind="credit", amount_cents=[1], description=5, date="x", colour="red")
    found = violations(await rest(gateway, "POST", lancamentos(merchant), body))
    assert set(found) == {"kind", "amount_cents", "description", "date", "colour"}, found
    assert "must be a JSON string" in found["description"]
    await nothing_booked(gateway, merchant)


async def test_the_lower_camel_names_of_the_json_mapping_are_accepted(
    gateway: LocalStack, merchant: str
) -> None:
    body = {
        "kind": "KIND_DEBIT",
        "amountCents": 1.25e3,
        "valueDate": "2026-03-05",
        "requestId": str(uuid.uuid4()),
        "description": "caf\\u00e9 \\ud83d\\ude00",
    }
    reply = await rest(gateway, "POST", lancamentos(merchant), json.dumps(body))
    assert reply.status == 200, reply.body
    assert (reply.body["amount_cents"], reply.body["value_date"]) == ("1250", "2026-03-05")
    assert reply.body["description"] == "caf\\u00e9 \\ud83d\\ude00"
    raw = (
        '{"kind":"KIND_CREDIT","amount_cents":7,"request_id":"r-esc",'
        '"description":"caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\/"}'
    )
    reply = await rest(gateway, "POST", lancamentos(merchant), raw)
    assert reply.status == 200, reply.body
    assert reply.body["description"] == 'café 😀 "q" /'


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ('"amount_cents":"9223372036854775808"', "amount_cents", "out of range"),
        ('"amount_cents":-9223372036854775809', "amount_cents", "out of range"),
        ('"amount_cents":1.5', "amount_cents", "whole number"),
        ('"amount_cents":true', "amount_cents", "whole number"),
        ('"amount_cents":1,"kind":9999999999', "kind", "one of"),
        ('"amount_cents":1,"kind":{"a":1}', "kind", "one of"),
        ('"amount_cents":1,"description":null,"description":"x"', "description", "given twice"),
        ('"amount_cents":1,"request_id":"a","requestId":"b"', "requestId", "given twice"),
        ('"amount_cents":1,"currency":["BRL"]', "currency", "JSON string"),
    ],
)
async def test_mistyped_values_are_named(
    gateway: LocalStack, merchant: str, fields: str, field: str, words: str
) -> None:
    raw = '{"request_id":"r-1","kind":"KIND_CREDIT",' + fields + "}"
    if '"kind"' in fields or "request" in fields:
        raw = "{" + fields + "}"
    found = violations(await rest(gateway, "POST", lancamentos(merchant), raw))
    assert field in found and words in found[field], found
    await nothing_booked(gateway, merchant)


async def test_invalid_utf8_in_a_string_is_named(gateway: LocalStack, merchant: str) -> None:
    raw = b'{"kind":"KIND_CREDIT","amount_cents":1,"request_id":"r","description":"a\xc3(b"}'
    found = violations(await rest(gateway, "POST", lancamentos(merchant), raw))
    assert list(found) == ["description"] and "UTF-8" in found["description"], found
    await nothing_booked(gateway, merchant)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[]", "must be a JSON object"),
        ('"x"', "must be a JSON object"),
        ('{"kind": "KIND_CREDIT",', "not valid JSON"),
        ('{"kind": "KIND_CREDIT"} {}', "not valid JSON"),
        ('{"amount_cents": 01}', "not valid JSON"),
        ('{"description": "a\nb"}', "not valid JSON"),
        ('{"description": "\\ud800"}', "not valid JSON"),
        ("[" * 5000 + "]" * 5000, "not valid JSON"),
        ('{"a":' * 5000 + "1" + "}" * 5000, "not valid JSON"),
    ],
)
async def test_a_body_that_is_no_json_object_is_400(
    gateway: LocalStack, merchant: str, text: str, words: str
) -> None:
    body = assert_error(await rest(gateway, "POST", lancamentos(merchant), text), 400, 3)
    assert words in body["message"] and body["details"] == [], body


async def test_a_body_field_may_repeat_the_path_but_not_contradict_it(
    gateway: LocalStack, merchant: str
) -> None:
    same = await create(gateway, merchant, merchant_id=merchant)
    assert same["merchant_id"] == merchant
    found = violations(
        await rest(gateway, "POST", lancamentos(merchant), new_entry(merchantId="other"))
    )
    assert list(found) == ["merchantId"] and merchant in found["merchantId"], found


async def test_reverse_bodies_are_checked_too(gateway: LocalStack, merchant: str) -> None:
    target = await create(gateway, merchant)
    path = f"{lancamentos(merchant)}/{target['lancamento_id']}:reverse"
    found = violations(await rest(gateway, "POST", path, {"request_id": "rv", "reason": "x"}))
    assert list(found) == ["reason"], found
    got = await rest(gateway, "GET", f"{lancamentos(merchant)}/{target['lancamento_id']}")
    assert got.body["reversed_by_lancamento_id"] == ""


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("kind=KIND_BOGUS", {"kind"}),
        ("page_size=abc", {"page_size"}),
        ("page_size=99999999999", {"page_size"}),
        ("pageSize=2&page_size=3", {"page_size"}),
        ("merchant_id=other", {"merchant_id"}),
        ("date=2026-03-05&kind=1", {"date"}),
    ],
)
async def test_query_parameters_are_checked_by_field(
    gateway: LocalStack, merchant: str, query: str, expected: set[str]
) -> None:
    found = violations(await rest(gateway, "GET", f"{lancamentos(merchant)}?{query}"))
    assert set(found) == expected, found


async def test_good_query_parameters_pass(gateway: LocalStack, merchant: str) -> None:
    await create(gateway, merchant, kind="KIND_DEBIT")
    reply = await rest(gateway, "GET", f"{lancamentos(merchant)}?kind=2&pageSize=5")
    assert reply.status == 200, reply.body
    assert len(reply.body["lancamentos"]) == 1


async def test_a_client_cannot_switch_off_the_error_shape(gateway: LocalStack) -> None:
    """The marker that keeps the check's body from the local-reply mappers is the
    gateway's own: a client's copy is dropped, and Envoy's errors keep their JSON."""
    host, _, port = gateway.rest_url.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/v2/nowhere", headers={"x-caixa-rejected": "1"})
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert (response.status, body["code"]) == (404, 5), body


async def test_the_check_never_refuses_json_the_transcoder_accepts(
    gateway: LocalStack, merchant: str
) -> None:
    """Any description in any legal JSON spelling passes the check and is stored as
    sent, or is refused by the service itself, naming the field. Hypothesis runs in a
    thread: the services share this event loop."""

    @settings(max_examples=25, deadline=None, database=None)
    @given(
        description=st.text(
            alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40
        ),
        ascii_only=st.booleans(),
    )
    def check(description: str, ascii_only: bool) -> None:
        text = json.dumps(new_entry(description=description), ensure_ascii=ascii_only)
        reply = http_request(gateway.rest_url, "POST", lancamentos(merchant), text)
        if reply.status == 200:
            assert reply.body["description"] == description
        else:
            assert set(violations(reply)) == {"description"}, reply.body
            assert "not valid JSON" not in reply.body["message"]

    await asyncio.to_thread(check)


@pytest.mark.parametrize(
    "text",
    [
        "'; DROP TABLE lancamentos; --",
        '{"kind": "KIND_DEBIT", "amount_cents": "999"}',
        "\\u0000 is not a NUL here, only six characters",
        "ação – 😀 – ｆｕｌｌ",
    ],
)
async def test_hostile_strings_are_stored_verbatim(
    gateway: LocalStack, merchant: str, text: str
) -> None:
    created = await create(gateway, merchant, description=text)
    assert created["description"] == text
    got = await rest(gateway, "GET", f"{lancamentos(merchant)}/{created['lancamento_id']}")
    assert got.body["description"] == text


@pytest.mark.parametrize("size", [1024 * 1024, 4 * 1024 * 1024])
async def test_a_huge_body_is_refused_whole_never_a_5xx(
    gateway: LocalStack, merchant: str, size: int
) -> None:
    """Past the gateway's 1 MiB request buffer: 413 in the services' error shape."""
    body = json.dumps(new_entry(description="x" * size))
    reply = await rest(gateway, "POST", lancamentos(merchant), body)
    assert_error(reply, 413, 8)
    await nothing_booked(gateway, merchant)
