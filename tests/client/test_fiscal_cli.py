"""`caixa fiscal` against a real fiscal server: one row per file in the order
given, unreadable and non-NF-e files as rows, and the exit status saying
whether every file passed."""

from __future__ import annotations

import uuid

import pytest

from caixa.cli.exit_codes import DOCUMENTS_FAILED, OK, REQUEST_REJECTED, SERVICE_FAILED
from tests.support.cli_fiscal import (
    SAMPLE_KEY,
    THREE,
    CliRun,
    FiscalFiles,
    run_caixa,
    table_rows,
)
from tooling.devstack.processes import free_port
from tooling.fiscal_documents import ACCESS_KEY, ISSUER, PROTOCOL


@pytest.fixture
def merchant() -> str:
    """A merchant of its own per test: its documents never collide with another's."""
    return f"cli-{uuid.uuid4().hex[:10]}"


async def fiscal_cli(
    capsys: pytest.CaptureFixture[str], server: str, *argv: str, json: bool = False
) -> CliRun:
    return await run_caixa(
        capsys, "--fiscal-target", server, *(["--json"] if json else []), "fiscal", *argv
    )


async def test_validate_gives_every_file_its_row_in_order(
    fiscal_server: str, fiscal_files: FiscalFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [
        fiscal_files.invoice(),
        fiscal_files.sample_with_findings(),
        fiscal_files.not_xml(),
        fiscal_files.missing(),
    ]
    run = await fiscal_cli(capsys, fiscal_server, "validate", *files)

    assert run.code == DOCUMENTS_FAILED, run.err
    assert run.err == ""
    rows = run.rows()
    assert list(rows) == files
    signed, sample, not_xml, missing = (rows[f] for f in files)
    assert signed == {
        "file": files[0],
        "access key": ACCESS_KEY,
        "type": "NF-e",
        "verdict": "valid",
        "findings": "none",
        "signature": "integrity only",
        "detail": "",
    }
    assert (sample["access key"], sample["verdict"]) == (SAMPLE_KEY, "invalid")
    assert sample["findings"] == "1 (502)" and sample["signature"] == "invalid"
    assert sample["detail"].startswith("infNFe/")
    assert (not_xml["verdict"], not_xml["findings"]) == ("invalid", "1 (caixa:document)")
    assert "not well-formed" in not_xml["detail"]
    assert missing["verdict"] == "unreadable"
    assert missing["detail"] == "cannot read: No such file or directory"


async def test_validate_json_is_each_files_report(
    fiscal_server: str, fiscal_files: FiscalFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [fiscal_files.invoice(), fiscal_files.not_xml(), fiscal_files.missing()]
    run = await fiscal_cli(capsys, fiscal_server, "validate", *files, json=True)

    assert run.code == DOCUMENTS_FAILED
    documents = run.json()["documents"]
    assert [d["file"] for d in documents] == files
    signed, not_xml, missing = documents
    assert signed["report"]["valid"] is True and signed["report"]["findings"] == []
    assert signed["report"]["access_key"] == ACCESS_KEY
    assert signed["report"]["signature"]["status"] == "SIGNATURE_STATUS_INTEGRITY_ONLY"
    assert signed["report"]["signature"]["certificate_cnpj"] == ISSUER
    assert not_xml["report"]["valid"] is False
    assert [f["code"] for f in not_xml["report"]["findings"]] == ["caixa:document"]
    assert missing == {"file": files[2], "error": "cannot read: No such file or directory"}


async def test_one_file_goes_unary_and_looks_as_it_does_in_a_stream(
    fiscal_server: str, fiscal_files: FiscalFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    valid = await fiscal_cli(capsys, fiscal_server, "validate", fiscal_files.invoice())
    assert valid.code == OK, valid.err
    assert [r["verdict"] for r in valid.rows().values()] == ["valid"]

    garbage = fiscal_files.not_xml()
    alone = await fiscal_cli(capsys, fiscal_server, "validate", garbage, json=True)
    streamed = await fiscal_cli(
        capsys, fiscal_server, "validate", garbage, fiscal_files.invoice(), json=True
    )
    assert alone.code == DOCUMENTS_FAILED
    # ValidateDocument refuses it (INVALID_ARGUMENT); the CLI shows the stream's report.
    assert alone.json()["documents"][0] == streamed.json()["documents"][0]

    missing = await fiscal_cli(capsys, fiscal_server, "validate", fiscal_files.missing())
    assert missing.code == DOCUMENTS_FAILED
    assert [r["verdict"] for r in missing.rows().values()] == ["unreadable"]


async def test_summary_says_what_each_invoice_says(
    fiscal_server: str, fiscal_files: FiscalFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [
        fiscal_files.invoice("three.xml", installments=THREE),
        fiscal_files.write("broken.xml", b"<broken"),
        fiscal_files.cancellation(),
        fiscal_files.invoice("bare.xml", wrapped=False),
    ]
    run = await fiscal_cli(capsys, fiscal_server, "summary", *files)

    assert run.code == DOCUMENTS_FAILED, run.err
    three, broken, cancellation, bare = (run.rows()[f] for f in files)
    assert three == {
        "file": files[0],
        "access key": ACCESS_KEY,
        "model/series/number": "55/1/47428",
        "issuer": three["issuer"],
        "recipient": three["recipient"],
        "vNF": "R$ 347,28",
        "installments": "3",
        "authorization": f"authorized {PROTOCOL}",
        "error": "",
    }
    assert three["issuer"].startswith(ISSUER) and three["recipient"].startswith("68161525650")
    assert "not well-formed" in broken["error"] and broken["access key"] == ""
    assert "cancellation" in cancellation["error"]
    assert bare["authorization"] == "none" and bare["error"] == ""

    alone = await fiscal_cli(capsys, fiscal_server, "summary", files[0], json=True)
    assert alone.code == OK
    [document] = alone.json()["documents"]
    assert document["summary"]["totals_cents"]["vNF"] == "34728"
    assert [i["due_date"] for i in document["summary"]["installments"]] == [
        "2018-08-24",
        "2018-09-24",
        "2018-10-24",
    ]


async def test_process_accepts_once_and_a_replay_answers_the_same(
    fiscal_server: str,
    fiscal_files: FiscalFiles,
    capsys: pytest.CaptureFixture[str],
    merchant: str,
) -> None:
    sold = fiscal_files.invoice(installments=THREE)
    argv = ("process", "--merchant", merchant, "--document", ISSUER, sold)
    first = await fiscal_cli(capsys, fiscal_server, *argv)

    assert first.code == OK, first.err
    assert first.rows()[sold] == {
        "file": sold,
        "access key": ACCESS_KEY,
        "status": "accepted",
        "total": "credit R$ 347,28",
        "entries": "3 (3 pending)",
        "reason": "",
    }
    replay = await fiscal_cli(capsys, fiscal_server, *argv)
    assert (replay.code, replay.out) == (OK, first.out)

    as_json = await fiscal_cli(capsys, fiscal_server, *argv, json=True)
    [document] = as_json.json()["documents"]
    assert document["document"]["status"] == "DOCUMENT_STATUS_ACCEPTED"
    assert [e["request_id"] for e in document["document"]["entries"]] == [
        f"nfe:{ACCESS_KEY}:{n}" for n in "123"
    ]

    shown = await fiscal_cli(capsys, fiscal_server, "get", "--merchant", merchant, ACCESS_KEY)
    assert shown.code == OK, shown.err
    assert f"access key  {ACCESS_KEY}" in shown.out and "status      accepted" in shown.out
    assert shown.out.count("pending") == 3 and f"nfe:{ACCESS_KEY}:3" in shown.out
    fetched = await fiscal_cli(
        capsys, fiscal_server, "get", "--merchant", merchant, ACCESS_KEY, json=True
    )
    assert fetched.json() == document["document"]

    cancelled = await fiscal_cli(
        capsys,
        fiscal_server,
        "process",
        "--merchant",
        merchant,
        "--document",
        ISSUER,
        fiscal_files.cancellation(),
    )
    assert cancelled.code == OK, cancelled.err
    [row] = cancelled.rows().values()
    assert row["status"] == "cancelled" and row["entries"] == "6 (6 pending)"
    assert row["reason"].startswith("cancelled: ")


async def test_the_audit_trail_of_processed_documents_verifies(
    fiscal_server: str,
    fiscal_files: FiscalFiles,
    capsys: pytest.CaptureFixture[str],
    merchant: str,
) -> None:
    sold = fiscal_files.invoice()
    process = ("process", "--merchant", merchant, "--document", ISSUER, sold)
    assert (await fiscal_cli(capsys, fiscal_server, *process)).code == OK
    trail = ("--fiscal-target", fiscal_server, "audit", "--service", "fiscal")

    listed = await run_caixa(capsys, *trail, "list", "--merchant", merchant)
    assert listed.code == OK, listed.err
    [record] = table_rows(listed.out)
    assert (record["rpc"], record["outcome"]) == ("ProcessDocument", "booked")
    verified = await run_caixa(capsys, *trail, "verify", "--merchant", merchant)
    assert verified.code == OK, verified.err
    assert verified.out.startswith(f"intact: 1 records of fiscal for {merchant!r}")


async def test_process_rows_what_it_cannot_book(
    fiscal_server: str,
    fiscal_files: FiscalFiles,
    capsys: pytest.CaptureFixture[str],
    merchant: str,
) -> None:
    files = [
        fiscal_files.invoice("denied.xml", status="110"),
        fiscal_files.sample_with_findings(),
        fiscal_files.not_xml(),
        fiscal_files.missing(),
    ]
    run = await fiscal_cli(
        capsys, fiscal_server, "process", "--merchant", merchant, "--document", ISSUER, *files
    )

    assert run.code == DOCUMENTS_FAILED, run.err
    denied, other_company, not_xml, missing = (run.rows()[f] for f in files)
    assert (denied["status"], denied["entries"]) == ("rejected", "0")
    assert denied["access key"] == ACCESS_KEY
    assert denied["reason"].startswith("not authorized: cStat 110")
    # Refused by ProcessDocument (INVALID_ARGUMENT): a row, and the next file goes on.
    assert other_company["status"] == "rejected" and "neither the issuer" in other_company["reason"]
    assert not_xml["status"] == "rejected" and "not well-formed" in not_xml["reason"]
    assert missing["status"] == "unreadable" and missing["reason"].startswith("cannot read")


async def test_get_of_an_unknown_document_is_not_found(
    fiscal_server: str, capsys: pytest.CaptureFixture[str], merchant: str
) -> None:
    run = await fiscal_cli(capsys, fiscal_server, "get", "--merchant", merchant, ACCESS_KEY)
    assert run.code == REQUEST_REJECTED
    assert run.err.startswith("error: NOT_FOUND") and "Traceback" not in run.err


async def test_a_bad_request_ends_the_run_naming_the_files_answered_before(
    fiscal_server: str, fiscal_files: FiscalFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [fiscal_files.missing(), fiscal_files.invoice()]
    run = await fiscal_cli(
        capsys, fiscal_server, "process", "--merchant", "no such merchant", *files
    )
    assert run.code == REQUEST_REJECTED and run.out == ""
    lines = run.err.splitlines()
    assert lines[0] == "error: INVALID_ARGUMENT" and lines[1].startswith("  merchant_id: ")
    assert lines[2] == (
        f"before it, 1 of 2 files were answered ({files[0]} unreadable); "
        "rerunning every file is safe: fiscal books each access key once"
    )


async def test_a_malformed_cnpj_is_a_usage_error(
    fiscal_files: FiscalFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("fiscal", "process", "--merchant", "m", "--document", "123", fiscal_files.invoice())
    with pytest.raises(SystemExit) as exited:
        await run_caixa(capsys, *argv)
    assert exited.value.code == REQUEST_REJECTED
    assert "invalid CNPJ or CPF '123'" in capsys.readouterr().err


async def test_an_unreachable_fiscal_is_a_service_failure(
    fiscal_files: FiscalFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    files = [fiscal_files.invoice(), fiscal_files.invoice("other.xml")]
    for argv in (
        ("validate", files[0]),
        ("summary", *files),
        ("process", "--merchant", "m", *files),
    ):
        run = await run_caixa(capsys, "--timeout", "1", "fiscal", "--fiscal-target", nowhere, *argv)
        assert run.code == SERVICE_FAILED and run.out == ""
        assert run.err.startswith("error: UNAVAILABLE") and "Traceback" not in run.err
    # A booking that may or may not have happened: rerunning is safe, and said so.
    assert "hint: the outcome is unknown; rerunning every file is safe" in run.err


async def test_register_then_process_without_a_document(
    fiscal_server: str,
    fiscal_files: FiscalFiles,
    capsys: pytest.CaptureFixture[str],
    merchant: str,
) -> None:
    run = await fiscal_cli(
        capsys, fiscal_server, "register", "--merchant", merchant, "--document", ISSUER
    )
    assert run.code == 0, run.err
    assert run.out.strip() == f"merchant {merchant} books invoices as {ISSUER}"
    run = await fiscal_cli(
        capsys, fiscal_server, "process", "--merchant", merchant, fiscal_files.invoice()
    )
    assert run.code == 0, run.err
    [row] = run.rows().values()
    assert row["status"] == "accepted" and row["total"] == "credit R$ 347,28"
