"""The caixa CLI and the typed client against the real services."""

from __future__ import annotations

import asyncio
import json

import pytest
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from caixa.cli.main import main as cli
from caixa.client import CaixaError, ConsolidadoClient
from tests.support.services import Mesh


async def run_cli(
    mesh: Mesh, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    consolidado = f"127.0.0.1:{mesh.consolidado_ports[0]}"
    argv = [
        "--lancamentos-target",
        mesh.lancamentos_address,
        "--consolidado-target",
        consolidado,
        *args,
    ]
    code = await asyncio.to_thread(cli, argv)
    out, err = capsys.readouterr()
    return code, out, err


async def test_cli_round_trip(
    mesh: Mesh,
    lancamentos_stub: lpb_grpc.LancamentosServiceStub,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = await run_cli(
        mesh,
        capsys,
        "--json",
        "create",
        "--merchant",
        "cli",
        "--kind",
        "credit",
        "--amount",
        "1234.56",
        "--date",
        "2026-07-01",
        "--description",
        "venda",
    )
    assert code == 0
    created = json.loads(out)
    assert created["amount_cents"] == "123456"
    entry_id = created["lancamento_id"]

    code, out, _ = await run_cli(mesh, capsys, "get", "--merchant", "cli", entry_id)
    assert code == 0 and entry_id in out

    code, out, _ = await run_cli(
        mesh,
        capsys,
        "create",
        "--merchant",
        "cli",
        "--kind",
        "debit",
        "--amount",
        "34.56",
        "--date",
        "2026-07-02",
    )
    assert code == 0
    code, out, _ = await run_cli(mesh, capsys, "--json", "list", "--merchant", "cli")
    assert code == 0
    assert len(json.loads(out)["lancamentos"]) == 2

    code, out, _ = await run_cli(
        mesh, capsys, "reverse", "--merchant", "cli", entry_id, "--date", "2026-07-03"
    )
    assert code == 0
    await mesh.wait_delivered()

    code, out, _ = await run_cli(
        mesh, capsys, "report", "--merchant", "cli", "--from", "2026-07-01", "--to", "2026-07-04"
    )
    assert code == 0
    assert "R$ 1.234,56" in out and "2026-07-04" in out
    code, out, _ = await run_cli(
        mesh, capsys, "--json", "balance", "--merchant", "cli", "--date", "2026-07-04"
    )
    assert code == 0
    # 1234.56 - 34.56 - 1234.56 (the reversal)
    assert json.loads(out)["closing_balance_cents"] == "-3456"


async def test_cli_errors_are_messages_not_tracebacks(
    mesh: Mesh,
    lancamentos_stub: lpb_grpc.LancamentosServiceStub,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = await run_cli(
        mesh, capsys, "get", "--merchant", "cli", "00000000-0000-0000-0000-000000000000"
    )
    assert code == 2
    assert err.startswith("error: NOT_FOUND")
    assert "Traceback" not in err
    code, _, err = await run_cli(
        mesh, capsys, "report", "--merchant", "cli", "--from", "2026-01-01", "--to", "2027-06-01"
    )
    assert code == 2
    assert "INVALID_ARGUMENT" in err and "from_date" in err


async def test_client_error_carries_field_violations(
    mesh: Mesh, lancamentos_stub: lpb_grpc.LancamentosServiceStub
) -> None:
    def bad_balance() -> CaixaError:
        with ConsolidadoClient(f"127.0.0.1:{mesh.consolidado_ports[0]}") as client:
            try:
                client.get_daily_balance("bad merchant", "2026-02-30")
            except CaixaError as error:
                return error
        raise AssertionError("expected an error")

    error = await asyncio.to_thread(bad_balance)
    fields = dict(error.field_violations)
    assert set(fields) == {"merchant_id", "date"}


async def test_an_invalid_argument_names_each_field_once(
    mesh: Mesh,
    lancamentos_stub: lpb_grpc.LancamentosServiceStub,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = await run_cli(
        mesh, capsys, "report", "--merchant", "cli", "--from", "2026-01-01", "--to", "2027-06-01"
    )
    assert code == 2
    assert err.count("the range may span at most 366 days") == 1, err
    assert err.splitlines()[0] == "error: INVALID_ARGUMENT"


async def test_errors_are_json_under_json(
    mesh: Mesh,
    lancamentos_stub: lpb_grpc.LancamentosServiceStub,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = await run_cli(
        mesh,
        capsys,
        "--json",
        "report",
        "--merchant",
        "cli",
        "--from",
        "2026-01-01",
        "--to",
        "2027-06-01",
    )
    assert code == 2 and out == ""
    error = json.loads(err)["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert [v["field"] for v in error["field_violations"]] == ["from_date"]
