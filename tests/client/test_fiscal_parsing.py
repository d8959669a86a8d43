"""The pure parts of fiscal's client and CLI: what is retried, where it connects,
how its flags parse and its rows read. No server is started here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fiscal.v1 import fiscal_pb2 as pb

from caixa.cli import fiscal_views
from caixa.cli.connections import Connections
from caixa.cli.fiscal import Unreadable, read_document
from caixa.cli.parser import build_parser
from caixa.client.fiscal_calls import MAX_DOCUMENT_BYTES
from caixa.client.service_config import FISCAL_SERVICE, service_config_json
from caixa.client.targets import FISCAL_TARGET_ENV, default_fiscal_target
from mesh.values import load_policy
from tests.support.cli_fiscal import table_rows
from tests.support.paths import MESH_SOURCES

FISCAL_METHODS = pb.DESCRIPTOR.services_by_name["FiscalService"].methods_by_name


def retried_methods() -> set[str]:
    config = json.loads(service_config_json(FISCAL_SERVICE))
    return {
        name["method"]
        for method_config in config["methodConfig"]
        for name in method_config["name"]
        if name["service"] == FISCAL_SERVICE
    }


def test_only_the_unary_fiscal_methods_are_retried() -> None:
    assert retried_methods() == {
        "ValidateDocument",
        "SummarizeDocument",
        "ProcessDocument",
        "GetDocument",
        "RegisterMerchant",
        "ListAuditRecords",
    }
    streams = {m.name for m in FISCAL_METHODS.values() if m.client_streaming}
    assert streams == {"ValidateDocuments", "SummarizeDocuments"}
    assert retried_methods() | streams == set(FISCAL_METHODS)


def test_the_client_retries_what_the_mesh_calls_idempotent() -> None:
    """Both retry fiscal's calls: the channel and the gateway agree on which are safe."""
    upstream = load_policy(MESH_SOURCES.values).upstreams["fiscal"]
    idempotent = {
        method.rsplit("/", 1)[1]
        for route_class in upstream.route_classes.values()
        if route_class.idempotent
        for method in route_class.methods
    }
    assert idempotent == retried_methods()


def test_the_fiscal_target_comes_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(FISCAL_TARGET_ENV, raising=False)
    assert default_fiscal_target() == "localhost:8080"
    argv = ["fiscal", "get", "--merchant", "m", "k"]
    assert build_parser().parse_args(argv).fiscal_target == "localhost:8080"
    monkeypatch.setenv(FISCAL_TARGET_ENV, "fiscal.internal:50054")
    assert build_parser().parse_args(argv).fiscal_target == "fiscal.internal:50054"
    flag = ["--fiscal-target", "gw:1"]
    before = build_parser().parse_args([*flag, *argv])
    middle = build_parser().parse_args(["fiscal", *flag, *argv[1:]])
    after = build_parser().parse_args([*argv, *flag])
    assert before.fiscal_target == middle.fiscal_target == after.fiscal_target == "gw:1"
    assert Connections("a:1", "b:2", 1.0).fiscal.target == "fiscal.internal:50054"


def test_fiscal_commands_parse() -> None:
    parser = build_parser()
    validate = parser.parse_args(["--json", "fiscal", "validate", "a.xml", "b.xml"])
    assert (validate.command, validate.fiscal_command) == ("fiscal", "validate")
    assert validate.files == ["a.xml", "b.xml"] and validate.json
    process = parser.parse_args(
        ["fiscal", "process", "--merchant", "m", "--document", "34.128.745/0001-52", "a.xml"]
    )
    assert (process.merchant, process.document, process.files) == ("m", "34128745000152", ["a.xml"])
    # A CNPJ of the alphanumeric kind (from July 2026) and a CPF are both taken.
    for document in ("12ABC34501DE35", "681.615.256-50"):
        parser.parse_args(["fiscal", "process", "--merchant", "m", "--document", document, "f"])


@pytest.mark.parametrize(
    "argv",
    [
        ["fiscal"],
        ["fiscal", "validate"],
        ["fiscal", "process", "a.xml"],
        ["fiscal", "process", "--merchant", "m"],
        ["fiscal", "process", "--merchant", "m", "--document", "1234", "a.xml"],
        ["fiscal", "get", "--merchant", "m"],
    ],
)
def test_malformed_fiscal_commands_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2


def test_a_file_that_cannot_be_sent_says_why(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    with big.open("wb") as handle:
        handle.truncate(MAX_DOCUMENT_BYTES + 1)
    with pytest.raises(Unreadable, match="larger than the 16 MiB fiscal can take"):
        read_document(str(big))
    with pytest.raises(Unreadable, match="cannot read: Is a directory"):
        read_document(str(tmp_path))


def test_the_validation_row_of_a_document_whose_signature_is_not_the_issuers() -> None:
    report = pb.ValidationReport(
        valid=True,
        document_type=pb.DOCUMENT_TYPE_NFCE,
        access_key="k" * 44,
        findings=[pb.Finding(code="caixa:x", severity=pb.SEVERITY_WARNING, message="look")],
        signature=pb.Signature(status=pb.SIGNATURE_STATUS_VALID, issuer_matches=False),
    )
    [row] = table_rows(fiscal_views.validation_table([fiscal_views.FileResult("a", report)]))
    assert row["type"] == "NFC-e" and row["verdict"] == "valid"
    assert row["findings"] == "1 (caixa:x)" and row["detail"] == ""
    assert row["signature"] == "valid, not the issuer's certificate"
