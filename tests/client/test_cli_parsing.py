"""The pure parts of the client and the CLI: no server is started here."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

import grpc
import pytest
from consolidado.v1 import consolidado_pb2
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from hypothesis import given
from hypothesis import strategies as st
from lancamentos.v1 import lancamentos_pb2

from caixa.cli import views
from caixa.cli.dates import parse_iso_date
from caixa.cli.exit_codes import REQUEST_REJECTED, SERVICE_FAILED, exit_code_for
from caixa.cli.money import format_brl, parse_brl_amount
from caixa.cli.parser import build_parser
from caixa.cli.table import render_fields, render_table
from caixa.client import CaixaError
from caixa.client.request_fields import (
    create_request,
    import_requests,
    import_row,
    to_date_field,
    to_kind,
)
from caixa.client.service_config import (
    CONSOLIDADO_SERVICE,
    LANCAMENTOS_SERVICE,
    build_service_config,
    service_config_json,
)
from caixa.client.targets import default_consolidado_target, default_lancamentos_target
from services.domain.rules import MAX_AMOUNT_CENTS

# --- BRL amounts -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("10", 1000),
        ("10.5", 1050),
        ("10.50", 1050),
        ("0.01", 1),
        ("0.1", 10),
        (" 7.25 ", 725),
        ("1234", 123400),
        ("10000000000", MAX_AMOUNT_CENTS),
    ],
)
def test_parse_brl_amount_is_exact_to_the_centavo(text: str, cents: int) -> None:
    assert parse_brl_amount(text) == cents


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("0", "must be positive"),
        ("0.00", "must be positive"),
        ("-1", "must be positive"),
        ("-0.01", "must be positive"),
        ("1.234", "at most 2 decimals"),
        ("10.500", "at most 2 decimals"),
        ("abc", "expected reais"),
        ("", "expected reais"),
        ("10.", "expected reais"),
        ("1e3", "expected reais"),
        ("NaN", "expected reais"),
        ("R$ 10", "expected reais"),
        ("10,50", "use '.' for the centavos"),
        ("1,234.56", "no thousands separator"),
        ("10000000000.01", "at most R$ 10.000.000.000,00"),
    ],
)
def test_parse_brl_amount_rejects_with_a_clear_message(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="invalid amount") as raised:
        parse_brl_amount(text)
    assert complaint in str(raised.value)


@given(st.integers(min_value=1, max_value=MAX_AMOUNT_CENTS))
def test_parse_brl_amount_round_trips_every_centavo(cents: int) -> None:
    assert parse_brl_amount(f"{cents // 100}.{cents % 100:02d}") == cents


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "R$ 0,00"),
        (1, "R$ 0,01"),
        (10, "R$ 0,10"),
        (99999, "R$ 999,99"),
        (100000, "R$ 1.000,00"),
        (123456, "R$ 1.234,56"),
        (-123456, "-R$ 1.234,56"),
        (-5, "-R$ 0,05"),
        (123456789012345, "R$ 1.234.567.890.123,45"),
        (-(2**63), "-R$ 92.233.720.368.547.758,08"),
    ],
)
def test_format_brl_uses_pt_br_separators(cents: int, text: str) -> None:
    assert format_brl(cents) == text


# --- dates -------------------------------------------------------------------


def test_parse_iso_date() -> None:
    assert parse_iso_date("2024-02-29") == date(2024, 2, 29)
    for bad in ("2023-02-29", "2024-13-01", "20240102", "2024-W01-1", "01/02/2024", ""):
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            parse_iso_date(bad)


# --- tables ------------------------------------------------------------------


def test_render_table_pads_and_right_aligns_numbers() -> None:
    table = render_table(
        ("date", "amount", "note"),
        [("2024-05-01", "R$ 1,00", "a"), ("2024-05-02", "R$ 1.234,56", "")],
        right_aligned={1},
        footer=("total", "R$ 1.235,56", ""),
    )
    assert table.splitlines() == [
        "date             amount  note",
        "----------  -----------  ----",
        "2024-05-01      R$ 1,00  a",
        "2024-05-02  R$ 1.234,56",
        "----------  -----------  ----",
        "total       R$ 1.235,56",
    ]


def test_render_table_without_rows_keeps_the_headers() -> None:
    assert render_table(("a", "bb"), []) == "a  bb\n-  --"


def test_render_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError, match="2 cells"):
        render_table(("a", "b", "c"), [("1", "2")])


def test_render_fields_lines_up_values() -> None:
    assert render_fields([("id", "x"), ("merchant", "m1")]) == "id        x\nmerchant  m1"


def _balance(day: str, opening: int, credits: int, debits: int, count: int) -> Any:
    net = credits - debits
    return consolidado_pb2.DailyBalance(
        date=day,
        opening_balance_cents=opening,
        credits_cents=credits,
        debits_cents=debits,
        net_cents=net,
        closing_balance_cents=opening + net,
        lancamentos_count=count,
    )


def test_balance_report_has_one_row_per_day_and_a_total() -> None:
    report = views.balance_report(
        [
            _balance("2024-05-01", 0, 100_000, 2_550, 3),
            _balance("2024-05-02", 97_450, 0, 200_000, 1),
        ]
    )
    assert report.splitlines() == [
        "date          opening      credits       debits           net       closing  count",
        "----------  ---------  -----------  -----------  ------------  ------------  -----",
        "2024-05-01    R$ 0,00  R$ 1.000,00     R$ 25,50     R$ 974,50     R$ 974,50      3",
        "2024-05-02  R$ 974,50      R$ 0,00  R$ 2.000,00  -R$ 2.000,00  -R$ 1.025,50      1",
        "----------  ---------  -----------  -----------  ------------  ------------  -----",
        "total         R$ 0,00  R$ 1.000,00  R$ 2.025,50  -R$ 1.025,50  -R$ 1.025,50      4",
    ]


def test_json_output_keeps_proto_field_names_and_zero_amounts() -> None:
    data = json.loads(views.to_json(_balance("2024-05-02", 0, 0, 0, 0)))
    assert data["date"] == "2024-05-02"
    assert data["credits_cents"] == "0"
    assert "closing_balance_cents" in data


# --- service config ----------------------------------------------------------


def _retried_methods(service: str) -> list[str]:
    config = json.loads(service_config_json(service))
    names: list[str] = []
    for method_config in config.get("methodConfig", []):
        policy = method_config["retryPolicy"]
        assert policy["maxAttempts"] == 4
        assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
        assert {"initialBackoff", "maxBackoff", "backoffMultiplier"} <= policy.keys()
        for name in method_config["name"]:
            assert name["service"] == service
            names.append(name["method"])
    return names


def test_only_idempotent_lancamentos_methods_are_retried() -> None:
    assert _retried_methods(LANCAMENTOS_SERVICE) == [
        "CreateLancamento",
        "GetLancamento",
        "ListLancamentos",
        "ReverseLancamento",
        "SummarizeLancamentos",
        "ListAuditRecords",
    ]


def test_only_idempotent_consolidado_methods_are_retried() -> None:
    assert _retried_methods(CONSOLIDADO_SERVICE) == [
        "GetDailyBalance",
        "ListDailyBalances",
        "ListAuditRecords",
    ]


def test_streaming_methods_are_never_retried() -> None:
    streaming = {"ImportLancamentos", "StreamLancamentos"}
    assert streaming.isdisjoint(_retried_methods(LANCAMENTOS_SERVICE))
    assert streaming <= set(
        lancamentos_pb2.DESCRIPTOR.services_by_name["LancamentosService"].methods_by_name
    )


def test_retried_methods_exist_in_the_protos() -> None:
    for service_name, methods in [
        (LANCAMENTOS_SERVICE, _retried_methods(LANCAMENTOS_SERVICE)),
        (CONSOLIDADO_SERVICE, _retried_methods(CONSOLIDADO_SERVICE)),
    ]:
        pool_file = lancamentos_pb2 if service_name == LANCAMENTOS_SERVICE else consolidado_pb2
        service = pool_file.DESCRIPTOR.services_by_name[service_name.rsplit(".", 1)[1]]
        assert set(methods) <= set(service.methods_by_name)


def test_unknown_service_gets_no_retries() -> None:
    assert build_service_config("consolidado.v1.ConsolidadoIngestService") == {}


# --- targets and request fields ---------------------------------------------


def test_default_targets_come_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAIXA_LANCAMENTOS_TARGET", raising=False)
    monkeypatch.delenv("CAIXA_CONSOLIDADO_TARGET", raising=False)
    assert default_lancamentos_target() == "localhost:8080"
    assert default_consolidado_target() == "localhost:8080"
    monkeypatch.setenv("CAIXA_LANCAMENTOS_TARGET", "gw:8080")
    monkeypatch.setenv("CAIXA_CONSOLIDADO_TARGET", "gw:8081")
    assert default_lancamentos_target() == "gw:8080"
    assert default_consolidado_target() == "gw:8081"


def test_request_fields() -> None:
    assert to_kind("credit") == lancamentos_pb2.KIND_CREDIT
    assert to_kind("KIND_DEBIT") == lancamentos_pb2.KIND_DEBIT
    assert to_kind(lancamentos_pb2.KIND_DEBIT) == lancamentos_pb2.KIND_DEBIT
    with pytest.raises(ValueError, match="credit"):
        to_kind("refund")
    assert to_date_field(None) == ""
    assert to_date_field(date(2024, 1, 2)) == "2024-01-02"
    assert to_date_field(datetime(2024, 1, 2, 23, 59)) == "2024-01-02"
    assert to_date_field("2024-01-02") == "2024-01-02"


def test_create_request_generates_a_request_id_only_when_absent() -> None:
    generated = create_request("m1", "credit", 100)
    assert uuid.UUID(generated.request_id).version == 4
    assert create_request("m1", "credit", 100, request_id="k1").request_id == "k1"


def test_import_rows_keep_the_callers_request_id() -> None:
    row = import_row(
        {"merchant_id": "m1", "kind": "debit", "amount_cents": 5, "value_date": date(2024, 1, 2)}
    )
    assert row.kind == lancamentos_pb2.KIND_DEBIT
    assert row.value_date == "2024-01-02"
    assert row.request_id == ""  # retries are safe only with the caller's own keys
    message = lancamentos_pb2.CreateLancamentoRequest(merchant_id="m1", request_id="k")
    assert import_row(message) == message


def test_import_rows_are_batched_in_order() -> None:
    rows = [lancamentos_pb2.CreateLancamentoRequest(request_id=str(i)) for i in range(7)]
    messages = list(import_requests(rows, batch_rows=3))
    assert [len(m.lancamentos) for m in messages] == [3, 3, 1]
    assert [r.request_id for m in messages for r in m.lancamentos] == [str(i) for i in range(7)]


# --- errors and exit codes ---------------------------------------------------


class _FailedCall(grpc.RpcError, grpc.Call):
    """What a blocking stub raises, minus the network."""

    def __init__(self, code: grpc.StatusCode, details: str, status: Any = None) -> None:
        self._code, self._details = code, details
        self._trailers = (
            (("grpc-status-details-bin", status.SerializeToString()),) if status else ()
        )

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._trailers

    def initial_metadata(self) -> Any:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return 0.0

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


def test_caixa_error_decodes_bad_request_field_violations() -> None:
    violation = error_details_pb2.BadRequest.FieldViolation
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                violation(field="amount_cents", description="> 0"),
                violation(field="merchant_id", description="req"),
            ]
        )
    )
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="bad", details=[detail])
    error = CaixaError.from_rpc_error(_FailedCall(grpc.StatusCode.INVALID_ARGUMENT, "bad", status))
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.message == "bad"
    assert error.field_violations == [("amount_cents", "> 0"), ("merchant_id", "req")]
    assert views.error_lines(error) == [
        "error: INVALID_ARGUMENT",
        "  amount_cents: > 0",
        "  merchant_id: req",
    ]


def test_caixa_error_without_details() -> None:
    error = CaixaError.from_rpc_error(_FailedCall(grpc.StatusCode.UNAVAILABLE, "down"))
    assert (error.code, error.message, error.field_violations) == (
        grpc.StatusCode.UNAVAILABLE,
        "down",
        [],
    )
    assert str(error) == "UNAVAILABLE: down"


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, REQUEST_REJECTED),
        (grpc.StatusCode.NOT_FOUND, REQUEST_REJECTED),
        (grpc.StatusCode.ALREADY_EXISTS, REQUEST_REJECTED),
        (grpc.StatusCode.FAILED_PRECONDITION, REQUEST_REJECTED),
        (grpc.StatusCode.PERMISSION_DENIED, REQUEST_REJECTED),
        (grpc.StatusCode.UNAVAILABLE, SERVICE_FAILED),
        (grpc.StatusCode.DEADLINE_EXCEEDED, SERVICE_FAILED),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, SERVICE_FAILED),
        (grpc.StatusCode.INTERNAL, SERVICE_FAILED),
    ],
)
def test_exit_codes(code: grpc.StatusCode, exit_code: int) -> None:
    assert exit_code_for(code) == exit_code


# --- argument parsing --------------------------------------------------------


def test_global_flags_work_before_and_after_the_subcommand() -> None:
    parser = build_parser()
    before = parser.parse_args(["--json", "--timeout", "2", "balance", "--merchant", "m"])
    after = parser.parse_args(["balance", "--merchant", "m", "--json", "--timeout", "2"])
    for args in (before, after):
        assert args.json is True
        assert args.timeout == 2.0
    plain = parser.parse_args(["balance", "--merchant", "m"])
    assert plain.json is False
    assert plain.timeout == 5.0
    assert plain.date is None


def test_create_takes_reais_or_centavos() -> None:
    parser = build_parser()
    common = ["create", "--merchant", "m", "--kind", "credit"]
    assert parser.parse_args([*common, "--amount", "10.5"]).amount_cents == 1050
    assert parser.parse_args([*common, "--amount-cents", "1050"]).amount_cents == 1050


@pytest.mark.parametrize(
    "argv",
    [
        ["create", "--merchant", "m", "--kind", "credit"],
        ["create", "--merchant", "m", "--kind", "credit", "--amount", "1", "--amount-cents", "1"],
        ["create", "--merchant", "m", "--kind", "credit", "--amount", "1.234"],
        ["create", "--merchant", "m", "--kind", "credit", "--amount-cents", "0"],
        ["create", "--merchant", "m", "--kind", "refund", "--amount", "1"],
        ["report", "--merchant", "m", "--from", "2024-05-01"],
        ["report", "--merchant", "m", "--from", "2024-05-01", "--to", "05/02/2024"],
        ["list", "--merchant", "m", "--limit", "-1"],
        ["--timeout", "0", "get", "--merchant", "m", "x"],
    ],
)
def test_malformed_commands_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == REQUEST_REJECTED
    assert "error:" in capsys.readouterr().err


def test_a_usage_error_is_two_lines_naming_the_problem(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(
            ["create", "--merchant", "m", "--kind", "credit", "--amount", "1.234"]
        )
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("caixa create: error: argument --amount: invalid amount")
    assert lines[1] == "(see `caixa create --help`)"
