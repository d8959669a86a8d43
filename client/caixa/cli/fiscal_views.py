"""How `caixa fiscal` shows its answers: one row per file, or JSON. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from fiscal.v1 import fiscal_pb2 as pb
from google.protobuf.message import Message

from caixa.cli.money import format_brl
from caixa.cli.table import render_fields, render_table
from caixa.cli.views import message_dict, to_json

Answer = TypeVar("Answer", bound=Message)


@dataclass(frozen=True)
class FileResult(Generic[Answer]):
    """One file named on the command line: the service's answer, or why there is
    none (`unreadable`: the file's own fault; the service never saw it)."""

    file: str
    answer: Answer | None = None
    error: str = ""
    unreadable: bool = False


_DOCUMENT_TYPES: dict[int, str] = {
    pb.DOCUMENT_TYPE_NFE: "NF-e",
    pb.DOCUMENT_TYPE_NFCE: "NFC-e",
    pb.DOCUMENT_TYPE_CANCELLATION: "cancellation",
}


def document_type_label(value: int) -> str:
    return _DOCUMENT_TYPES.get(value, "")


def _enum_label(enum: Callable[[int], str], prefix: str, value: int) -> str:
    """`DOCUMENT_STATUS_POSTED` → "posted"; UNSPECIFIED → "-"."""
    name = enum(value).removeprefix(prefix).lower().replace("_", " ")
    return "-" if name == "unspecified" else name


def signature_label(signature: pb.Signature) -> str:
    label = _enum_label(pb.SignatureStatus.Name, "SIGNATURE_STATUS_", signature.status)
    intact = (pb.SIGNATURE_STATUS_VALID, pb.SIGNATURE_STATUS_INTEGRITY_ONLY)
    if signature.status in intact and not signature.issuer_matches:
        label += ", not the issuer's certificate"
    return label


def status_label(status: int) -> str:
    return _enum_label(pb.DocumentStatus.Name, "DOCUMENT_STATUS_", status)


def kind_label(kind: int) -> str:
    return _enum_label(pb.Kind.Name, "KIND_", kind)


def _findings_cell(findings: Sequence[pb.Finding]) -> str:
    """`2 (253, xsd)`: how many, and their codes, each once, in order."""
    if not findings:
        return "none"
    codes = list(dict.fromkeys(f.code for f in findings))
    return f"{len(findings)} ({', '.join(codes)})"


def _report_detail(report: pb.ValidationReport) -> str:
    """What to fix first: the first error, else a signature that does not hold."""
    errors = [f for f in report.findings if f.severity == pb.SEVERITY_ERROR]
    if errors:
        first = errors[0]
        # A refused document's message names the field already.
        named = not first.path or first.path in first.message
        text = first.message if named else f"{first.path}: {first.message}"
        return text + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else "")
    if report.signature.status in (pb.SIGNATURE_STATUS_INVALID, pb.SIGNATURE_STATUS_ABSENT):
        return f"signature: {report.signature.message}"
    return ""


# --- validate -----------------------------------------------------------------


def report_passed(result: FileResult[pb.ValidationReport]) -> bool:
    return result.answer is not None and result.answer.valid


VALIDATION_HEADERS = ("file", "access key", "type", "verdict", "findings", "signature", "detail")


def validation_table(results: Sequence[FileResult[pb.ValidationReport]]) -> str:
    rows = []
    for result in results:
        report = result.answer
        if report is None:
            rows.append((result.file, "", "", "unreadable", "", "", result.error))
            continue
        rows.append(
            (
                result.file,
                report.access_key,
                document_type_label(report.document_type),
                "valid" if report.valid else "invalid",
                _findings_cell(report.findings),
                signature_label(report.signature),
                _report_detail(report),
            )
        )
    return render_table(VALIDATION_HEADERS, rows)


# --- summary ------------------------------------------------------------------


def summary_passed(result: FileResult[pb.DocumentSummary]) -> bool:
    return result.answer is not None


def _party(party: pb.Party, width: int = 32) -> str:
    text = f"{party.document} {party.name}".strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def _authorization(summary: pb.DocumentSummary) -> str:
    if not summary.HasField("protocol"):
        return "none"
    protocol = summary.protocol
    if protocol.authorized:
        return f"authorized {protocol.number}".strip()
    return f"not authorized: cStat {protocol.status} {protocol.reason}".strip()


SUMMARY_HEADERS = (
    "file",
    "access key",
    "model/series/number",
    "issuer",
    "recipient",
    "vNF",
    "installments",
    "authorization",
    "error",
)


def summary_table(results: Sequence[FileResult[pb.DocumentSummary]]) -> str:
    rows = []
    for result in results:
        read = result.answer
        if read is None:
            rows.append((result.file, "", "", "", "", "", "", "", result.error))
            continue
        total = read.totals_cents.get("vNF")
        rows.append(
            (
                result.file,
                read.access_key,
                f"{read.model}/{read.series}/{read.number}",
                _party(read.issuer),
                _party(read.recipient),
                "" if total is None else format_brl(total),
                str(len(read.installments)),
                _authorization(read),
                "",
            )
        )
    return render_table(SUMMARY_HEADERS, rows, right_aligned={5, 6})


# --- process ------------------------------------------------------------------


def document_passed(result: FileResult[pb.FiscalDocument]) -> bool:
    return result.answer is not None and result.answer.status != pb.DOCUMENT_STATUS_REJECTED


def _entry_state(entry: pb.Entry) -> str:
    state = _enum_label(pb.EntryState.Name, "ENTRY_STATE_", entry.state)
    return f"{state}: {entry.parked_reason}" if entry.parked_reason else state


def _entries_cell(entries: Sequence[pb.Entry]) -> str:
    """`3 (2 posted, 1 pending)`."""
    if not entries:
        return "0"
    states = Counter(_enum_label(pb.EntryState.Name, "ENTRY_STATE_", e.state) for e in entries)
    return f"{len(entries)} ({', '.join(f'{n} {state}' for state, n in states.items())})"


def _total(document: pb.FiscalDocument) -> str:
    if document.kind == pb.KIND_UNSPECIFIED:
        return ""
    return f"{kind_label(document.kind)} {format_brl(document.total_cents)}"


PROCESS_HEADERS = ("file", "access key", "status", "total", "entries", "reason")


def process_status(result: FileResult[pb.FiscalDocument]) -> str:
    """accepted, posted, cancelled or rejected; unreadable for a file never sent."""
    if result.answer is not None:
        return status_label(result.answer.status)
    return "unreadable" if result.unreadable else "rejected"


def process_table(results: Sequence[FileResult[pb.FiscalDocument]]) -> str:
    rows = []
    for result in results:
        document = result.answer
        if document is None:
            rows.append((result.file, "", process_status(result), "", "", result.error))
            continue
        rows.append(
            (
                result.file,
                document.access_key,
                status_label(document.status),
                _total(document),
                _entries_cell(document.entries),
                document.reason,
            )
        )
    return render_table(PROCESS_HEADERS, rows, right_aligned={4})


# --- get ----------------------------------------------------------------------


def document_detail(document: pb.FiscalDocument) -> str:
    """The document's fields, then one line per entry and per finding."""
    fields = [
        ("merchant", document.merchant_id),
        ("access key", document.access_key),
        ("type", document_type_label(document.document_type)),
        ("status", status_label(document.status)),
        ("reason", document.reason),
        ("total", _total(document)),
        ("issued at", document.issued_at.ToJsonString() if document.HasField("issued_at") else ""),
        (
            "updated at",
            document.updated_at.ToJsonString() if document.HasField("updated_at") else "",
        ),
    ]
    parts = [render_fields([(label, value) for label, value in fields if value])]
    if document.entries:
        entries = [
            (
                e.installment or "-",
                ("reversal of " if e.reversal else "") + kind_label(e.kind),
                format_brl(e.amount_cents),
                e.value_date,
                _entry_state(e),
                e.lancamento_id,
                e.request_id,
            )
            for e in document.entries
        ]
        headers = (
            "installment",
            "kind",
            "amount",
            "value date",
            "state",
            "lancamento",
            "request id",
        )
        parts.append(render_table(headers, entries, right_aligned={2}))
    if document.findings:
        findings = [
            (
                f.code,
                _enum_label(pb.Severity.Name, "SEVERITY_", f.severity),
                f.path,
                f.message,
            )
            for f in document.findings
        ]
        parts.append(render_table(("finding", "severity", "path", "message"), findings))
    return "\n\n".join(parts)


# --- JSON ---------------------------------------------------------------------


def results_json(results: Sequence[FileResult[Answer]], key: str) -> str:
    """`{"documents": [{"file": ..., key: {...}} or {"file": ..., "error": ...}]}`,
    in the order of the command line."""
    documents = [
        {"file": r.file, key: message_dict(r.answer)}
        if r.answer is not None
        else {"file": r.file, "error": r.error}
        for r in results
    ]
    return to_json({"documents": documents})
