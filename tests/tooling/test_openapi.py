"""The committed OpenAPI document is fresh and describes the transcoded REST surface."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

from tests.support.paths import MESH_SOURCES, REPO_ROOT
from tooling.openapi import descriptors, document
from tooling.openapi.generate import COMMAND, generate, main
from tooling.openapi.paths import bindings

DESCRIPTOR = REPO_ROOT / "build" / "caixa.pb"
COMMITTED = REPO_ROOT / "openapi" / "caixa.openapi.json"
VALUES = MESH_SOURCES.values
SCHEMAS = "#/components/schemas/"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

# The REST table of the public contract (the protos' google.api.http annotations).
EXPECTED_ROUTES = {
    ("post", "/v1/merchants/{merchant_id}/lancamentos"): "CreateLancamento",
    ("get", "/v1/merchants/{merchant_id}/lancamentos/{lancamento_id}"): "GetLancamento",
    ("get", "/v1/merchants/{merchant_id}/lancamentos"): "ListLancamentos",
    (
        "post",
        "/v1/merchants/{merchant_id}/lancamentos/{lancamento_id}:reverse",
    ): "ReverseLancamento",
    ("get", "/v1/merchants/{merchant_id}/daily-balances/{date}"): "GetDailyBalance",
    ("get", "/v1/merchants/{merchant_id}/daily-balances"): "ListDailyBalances",
    ("get", "/v1/merchants/{merchant_id}/audit-records"): "ListAuditRecords",
    (
        "get",
        "/v1/merchants/{merchant_id}/consolidation-audit-records",
    ): "ConsolidadoService_ListAuditRecords",
    ("post", "/v1/fiscal/documents:validate"): "ValidateDocument",
    ("post", "/v1/fiscal/documents:summarize"): "SummarizeDocument",
    ("post", "/v1/fiscal/documents:process"): "ProcessDocument",
    ("get", "/v1/merchants/{merchant_id}/fiscal-documents/{access_key}"): "GetDocument",
    ("post", "/v1/merchants/{merchant_id}/fiscal-registration"): "RegisterMerchant",
    (
        "get",
        "/v1/merchants/{merchant_id}/fiscal-audit-records",
    ): "FiscalService_ListAuditRecords",
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(generate(DESCRIPTOR, VALUES))
    return loaded


def _operations(doc: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        operation["operationId"]: (method, path, operation)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
    }


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = doc["components"]["schemas"][name]
    return schema


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_committed_document_is_fresh() -> None:
    assert COMMITTED.exists(), f"{COMMITTED} is missing; run `{COMMAND}`"
    assert COMMITTED.read_text(encoding="utf-8") == generate(DESCRIPTOR, VALUES), (
        f"{COMMITTED.relative_to(REPO_ROOT)} is stale; run `{COMMAND}`"
    )


def test_check_flag_reports_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "caixa.openapi.json"
    args = ["--descriptor", str(DESCRIPTOR), "--out", str(out)]
    args += [arg for path in VALUES for arg in ("-f", str(path))]
    assert main([*args, "--check"]) == 1, "a missing file is stale"
    assert main(args) == 0
    assert main([*args, "--check"]) == 0
    stale = out.read_text(encoding="utf-8").replace('"title": "Caixa"', '"title": "Kaixa"')
    out.write_text(stale, encoding="utf-8")
    capsys.readouterr()
    assert main([*args, "--check"]) == 1
    err = capsys.readouterr().err
    assert COMMAND in err
    assert '-    "title": "Kaixa",' in err and '+    "title": "Caixa",' in err


def test_the_server_is_the_local_gateway_of_the_values(tmp_path: Path) -> None:
    overlay = tmp_path / "ports.yaml"
    overlay.write_text("mesh: {localTopology: {gateway: {port: 18080}}}\n", encoding="utf-8")
    assert json.loads(generate(DESCRIPTOR, VALUES))["servers"] == [{"url": "http://localhost:8080"}]
    moved = json.loads(generate(DESCRIPTOR, (*VALUES, overlay)))
    assert moved["servers"] == [{"url": "http://localhost:18080"}]


def test_rendering_is_deterministic(doc: dict[str, Any]) -> None:
    text = generate(DESCRIPTOR, VALUES)
    assert text == generate(DESCRIPTOR, VALUES)
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_every_http_rule_of_the_public_services_is_a_route(doc: dict[str, Any]) -> None:
    routes = {
        (method, path): operation["operationId"]
        for path, item in doc["paths"].items()
        for method, operation in item.items()
    }
    assert routes == EXPECTED_ROUTES
    # And straight from the descriptor, so an added rule cannot be missed.
    index = descriptors.load(DESCRIPTOR)
    for name in document.PUBLIC_SERVICES:
        for method in index.services[name].proto.method:
            rule = descriptors.http_rule(method)
            for binding in bindings(rule) if rule else []:
                # A name another service took first is qualified with its service.
                assert routes[(binding.method, binding.path)] in {
                    method.name,
                    f"{index.services[name].proto.name}_{method.name}",
                }
    for method_name, path, operation in _operations(doc).values():
        assert set(re.findall(r"\{([^}]+)\}", path)) == {
            p["name"] for p in operation["parameters"] if p["in"] == "path"
        }, f"{method_name} {path}"


def test_internal_service_and_grpc_only_rpcs_are_absent(doc: dict[str, Any]) -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())
    services = {f"{f.package}.{s.name}": s for f in files.file for s in f.service}
    assert "consolidado.v1.ConsolidadoIngestService" in services, "the fixture must hold it"
    operation_ids = set(_operations(doc))
    for rpc in ("ImportLancamentos", "StreamLancamentos", "SummarizeLancamentos"):
        assert rpc not in operation_ids
    for method in services["consolidado.v1.ConsolidadoIngestService"].method:
        assert method.name not in operation_ids
    text = json.dumps(doc)
    for internal in ("ConsolidadoIngestService", "ApplyLancamentos", "ReconcileRequest"):
        assert internal not in text
    assert [tag["name"] for tag in doc["tags"]] == list(document.PUBLIC_SERVICES)


def test_json_mapping_follows_the_transcoder(doc: dict[str, Any]) -> None:
    lancamento = _schema(doc, "lancamentos.v1.Lancamento")["properties"]
    balance = _schema(doc, "consolidado.v1.DailyBalance")["properties"]
    for prop in (lancamento["amount_cents"], lancamento["sequence"], balance["net_cents"]):
        assert (prop["type"], prop["format"]) == ("string", "int64")
    assert balance["as_of"]["type"] == "string" and balance["as_of"]["format"] == "date-time"
    kind = _schema(doc, "lancamentos.v1.Kind")
    assert kind["type"] == "string"
    assert kind["enum"] == ["KIND_UNSPECIFIED", "KIND_CREDIT", "KIND_DEBIT"]
    assert lancamento["kind"]["allOf"] == [{"$ref": SCHEMAS + "lancamentos.v1.Kind"}]
    listing = _schema(doc, "lancamentos.v1.ListLancamentosResponse")["properties"]
    assert listing["lancamentos"]["items"] == {"$ref": SCHEMAS + "lancamentos.v1.Lancamento"}


def test_field_behavior_marks_read_only_and_required(doc: dict[str, Any]) -> None:
    lancamento = _schema(doc, "lancamentos.v1.Lancamento")["properties"]
    read_only = {name for name, prop in lancamento.items() if prop.get("readOnly")}
    assert read_only == {
        "lancamento_id",
        "created_at",
        "sequence",
        "reverses_lancamento_id",
        "reversed_by_lancamento_id",
    }
    operations = _operations(doc)
    _, _, create = operations["CreateLancamento"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    # merchant_id is bound by the path, so the body leaves it out.
    assert "merchant_id" not in body["properties"]
    assert body["required"] == ["kind", "amount_cents", "request_id"]
    assert body["properties"]["amount_cents"]["format"] == "int64"
    _, _, reverse = operations["ReverseLancamento"]
    reverse_body = reverse["requestBody"]["content"]["application/json"]["schema"]
    assert reverse_body["required"] == ["request_id"]
    _, _, list_balances = operations["ListDailyBalances"]
    query = {p["name"]: p for p in list_balances["parameters"] if p["in"] == "query"}
    assert set(query) == {"from_date", "to_date"}
    assert all(p["required"] for p in query.values())


def test_query_parameters_are_the_unbound_request_fields(doc: dict[str, Any]) -> None:
    _, _, listing = _operations(doc)["ListLancamentos"]
    params = {(p["name"], p["in"]): p for p in listing["parameters"]}
    assert list(params) == [
        ("merchant_id", "path"),
        ("from_date", "query"),
        ("to_date", "query"),
        ("kind", "query"),
        ("page_size", "query"),
        ("page_token", "query"),
    ]
    assert params[("page_size", "query")]["schema"] == {"type": "integer", "format": "int32"}
    assert params[("kind", "query")]["schema"] == {"$ref": SCHEMAS + "lancamentos.v1.Kind"}
    assert not params[("kind", "query")]["required"]
    assert params[("merchant_id", "path")]["required"]


def test_descriptions_come_from_proto_comments(doc: dict[str, Any]) -> None:
    _, _, get = _operations(doc)["GetLancamento"]
    assert get["summary"] == "Returns one entry of a merchant, with its reversal links."
    assert get["description"] == get["summary"]
    _, _, reverse = _operations(doc)["ReverseLancamento"]
    assert reverse["description"].endswith(
        "at most once and a reversal is never reversed (`FAILED_PRECONDITION`)."
    )
    amount = _schema(doc, "lancamentos.v1.Lancamento")["properties"]["amount_cents"]
    assert amount["description"] == (
        "The amount in centavos: positive, at most 1,000,000,000,000 (R$ 10 bi).\n"
        "A merchant's booked volume (all its amounts, credits and debits) stays at\n"
        "most 2^63-1 centavos, so no sum or balance can overflow a signed 64-bit\n"
        "integer; an entry that would pass it is INVALID_ARGUMENT."
    )
    _, _, listing = _operations(doc)["ListLancamentos"]
    page_size = next(p for p in listing["parameters"] if p["name"] == "page_size")
    assert page_size["description"] == "At most this many entries (1 to 1000); 0 means 50."
    assert _schema(doc, "consolidado.v1.DailyBalance")["description"].startswith(
        "A merchant's consolidated position on one day."
    )


def test_errors_follow_the_grpc_to_http_mapping(doc: dict[str, Any]) -> None:
    status = _schema(doc, "google.rpc.Status")
    assert status["properties"]["code"]["type"] == "integer"
    assert status["required"] == ["code", "message", "details"]
    bad_request = _schema(doc, "google.rpc.BadRequest")["properties"]
    # Printed with preserve_proto_field_names, also inside the Any.
    violation = bad_request["field_violations"]["items"]["properties"]
    assert {"field", "description"} <= set(violation)
    responses = doc["components"]["responses"]
    for method_name, (method, _, operation) in _operations(doc).items():
        codes = set(operation["responses"])
        expected = {"200", "400", "401", "403", "404", "429", "503", "default"} | (
            {"409"} if method != "get" else set()
        )
        assert codes == expected, method_name
        for code in codes - {"200"}:
            name = operation["responses"][code]["$ref"].removeprefix("#/components/responses/")
            schema = responses[name]["content"]["application/json"]["schema"]
            assert schema == {"$ref": SCHEMAS + "google.rpc.Status"}


def test_every_operation_takes_a_bearer_token(doc: dict[str, Any]) -> None:
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert doc["security"] == [{"bearer": []}]
    assert all("security" not in op for _, _, op in _operations(doc).values())


def test_document_structure(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.0.3"
    assert doc["info"]["title"] == "Caixa" and doc["info"]["version"] == "v1"
    assert doc["servers"] == [{"url": "http://localhost:8080"}]
    operation_ids = [op["operationId"] for _, _, op in _operations(doc).values()]
    assert len(operation_ids) == len(set(operation_ids))
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        assert set(item) <= HTTP_METHODS
        for operation in item.values():
            assert "200" in operation["responses"]
            for parameter in operation["parameters"]:
                assert parameter["in"] in {"path", "query"}
                assert "schema" in parameter
                if parameter["in"] == "path":
                    assert parameter["required"] is True
    components = doc["components"]
    for ref in _refs(doc):
        section, name = ref.removeprefix("#/components/").split("/", 1)
        assert name in components[section], f"dangling $ref {ref}"
    for name in components["schemas"]:
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name


def test_document_passes_the_openapi_validator(doc: dict[str, Any]) -> None:
    validator = pytest.importorskip(
        "openapi_spec_validator", reason="openapi-spec-validator is not installed"
    )
    validator.validate(doc)


def test_a_raw_document_body_is_xml_not_json(doc: dict[str, Any]) -> None:
    """fiscal's documents travel as the request body itself (google.api.HttpBody)."""
    for action in ("validate", "summarize", "process"):
        body = doc["paths"][f"/v1/fiscal/documents:{action}"]["post"]["requestBody"]
        assert set(body["content"]) == {"application/xml", "text/xml"}
        assert body["content"]["application/xml"]["schema"] == {
            "type": "string",
            "format": "binary",
        }
    process = doc["paths"]["/v1/fiscal/documents:process"]["post"]
    assert [p["name"] for p in process["parameters"]] == ["merchant_id", "merchant_document"]
