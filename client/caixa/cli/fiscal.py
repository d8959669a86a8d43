"""`caixa fiscal validate|summary|process|get`: NF-e files checked, read and
booked by the fiscal service, one row per file in the order given.

validate and summary send several files on one stream (its answers come in
order) and a single file as a unary call; process calls ProcessDocument per
file. A file that cannot be read, or that the service finds no NF-e in, is a
row saying so and the other files are still answered; then the command exits
DOCUMENTS_FAILED. An outage or a refused token ends it as any command.
"""

from __future__ import annotations

import argparse
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import TypeVar

import grpc
from fiscal.v1 import fiscal_pb2 as pb
from google.protobuf.message import Message

from caixa.cli import views
from caixa.cli.connections import Connections
from caixa.cli.exit_codes import SERVICE_FAILED, exit_code_for
from caixa.cli.fiscal_views import (
    FileResult,
    document_detail,
    document_passed,
    process_status,
    process_table,
    report_passed,
    results_json,
    summary_passed,
    summary_table,
    validation_table,
)
from caixa.client import CaixaError, FiscalClient
from caixa.client.fiscal_calls import MAX_DOCUMENT_BYTES, MAX_MESSAGE_BYTES

Answer = TypeVar("Answer")
Shown = TypeVar("Shown", bound=Message)


class DocumentsFailed(Exception):
    """Some file did not pass; `output` is the whole table (or JSON) all the same."""

    def __init__(self, output: str) -> None:
        super().__init__(output)
        self.output = output


class Unreadable(Exception):
    """The file cannot be sent: the message says why."""


def read_document(name: str) -> bytes:
    try:
        with open(name, "rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as error:
        raise Unreadable(f"cannot read: {error.strerror or error}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise Unreadable(
            f"cannot send: larger than the {MAX_MESSAGE_BYTES >> 20} MiB fiscal can take"
        )
    return data


def _read_then(name: str, answer: Callable[[bytes], FileResult[Shown]]) -> FileResult[Shown]:
    """The service's `answer` for the file, or why it could not be read."""
    try:
        data = read_document(name)
    except Unreadable as error:
        return FileResult(name, error=str(error), unreadable=True)
    return answer(data)


def _about_the_document(error: CaixaError, fields: Collection[str] = ("document",)) -> bool:
    """The service refused this file's document (no NF-e in it; with
    `merchant_document` also: not the merchant's), not the request itself."""
    return (
        error.code is grpc.StatusCode.INVALID_ARGUMENT
        and bool(error.field_violations)
        and all(field in fields for field, _ in error.field_violations)
    )


class _Pairing:
    """Feeds the readable files to one stream, read as it asks for them, and
    says which file each answer is for: answers come in the order sent."""

    def __init__(self, names: Sequence[str]) -> None:
        self._names = names
        self.unreadable: dict[int, str] = {}
        # Appended on gRPC's thread (which reads `documents`), popped on ours;
        # a file's index is in before its document is sent, so before its answer.
        self._sent: deque[int] = deque()

    def documents(self) -> Iterator[bytes]:
        for index, name in enumerate(self._names):
            try:
                data = read_document(name)
            except Unreadable as error:
                self.unreadable[index] = str(error)
                continue
            self._sent.append(index)
            yield data

    def answered(self) -> int:
        """The index of the file the next answer is for."""
        return self._sent.popleft()


def _streamed(
    names: Sequence[str],
    stream: Callable[[Iterable[bytes]], Iterator[Answer]],
    result: Callable[[str, Answer], FileResult[Shown]],
) -> list[FileResult[Shown]]:
    """Every file's result, in order: from the stream's answers, or unreadable."""
    pairing = _Pairing(names)
    answered: dict[int, FileResult[Shown]] = {}
    for answer in stream(pairing.documents()):
        index = pairing.answered()
        answered[index] = result(names[index], answer)
    results: list[FileResult[Shown]] = []
    for index, name in enumerate(names):
        if index in pairing.unreadable:
            results.append(FileResult(name, error=pairing.unreadable[index], unreadable=True))
        elif index in answered:
            results.append(answered[index])
        else:
            results.append(FileResult(name, error="no answer: the stream ended before it"))
    return results


def _stream_timeout(args: argparse.Namespace) -> float:
    """One stream for every file: each gets the deadline a single call would."""
    seconds: float = args.timeout * len(args.files)
    return seconds


def _done(output: str, passed: bool) -> str:
    if not passed:
        raise DocumentsFailed(output)
    return output


# --- validate -----------------------------------------------------------------


def _validated(client: FiscalClient, name: str, data: bytes) -> FileResult[pb.ValidationReport]:
    try:
        return FileResult(name, client.validate_document(data))
    except CaixaError as error:
        if not _about_the_document(error):
            raise
        # The report ValidateDocuments gives such a document, so that one file
        # and many look alike.
        finding = pb.Finding(
            code="caixa:document",
            severity=pb.SEVERITY_ERROR,
            path="document",
            message=error.message,
        )
        return FileResult(name, pb.ValidationReport(valid=False, findings=[finding]))


def validate(args: argparse.Namespace, connections: Connections) -> str:
    names: list[str] = args.files
    client = connections.fiscal
    results: list[FileResult[pb.ValidationReport]]
    if len(names) == 1:
        results = [_read_then(names[0], lambda data: _validated(client, names[0], data))]
    else:
        results = _streamed(
            names,
            lambda documents: client.validate_documents(documents, timeout=_stream_timeout(args)),
            FileResult,
        )
    output = results_json(results, "report") if args.json else validation_table(results)
    return _done(output, all(report_passed(r) for r in results))


# --- summary ------------------------------------------------------------------


def _summarized(client: FiscalClient, name: str, data: bytes) -> FileResult[pb.DocumentSummary]:
    try:
        return FileResult(name, client.summarize_document(data))
    except CaixaError as error:
        if not _about_the_document(error):
            raise
        return FileResult(name, error=error.message)


def _summary_of(name: str, answer: pb.SummarizeDocumentsResponse) -> FileResult[pb.DocumentSummary]:
    if answer.WhichOneof("result") == "summary":
        return FileResult(name, answer.summary)
    return FileResult(name, error=answer.error)


def summary(args: argparse.Namespace, connections: Connections) -> str:
    names: list[str] = args.files
    client = connections.fiscal
    results: list[FileResult[pb.DocumentSummary]]
    if len(names) == 1:
        results = [_read_then(names[0], lambda data: _summarized(client, names[0], data))]
    else:
        results = _streamed(
            names,
            lambda documents: client.summarize_documents(documents, timeout=_stream_timeout(args)),
            _summary_of,
        )
    output = results_json(results, "summary") if args.json else summary_table(results)
    return _done(output, all(summary_passed(r) for r in results))


# --- process and get -------------------------------------------------------------


def _processed(
    args: argparse.Namespace, client: FiscalClient, name: str
) -> FileResult[pb.FiscalDocument]:
    def book(data: bytes) -> FileResult[pb.FiscalDocument]:
        try:
            document = client.process_document(
                args.merchant, data, merchant_document=args.document or ""
            )
        except CaixaError as error:
            # Refusals of this document (no NF-e in it, neither issued nor
            # received by the merchant, a cancellation that cannot apply);
            # anything else is the request's or the service's.
            per_document = _about_the_document(error, ("document", "merchant_document"))
            if per_document or error.code is grpc.StatusCode.FAILED_PRECONDITION:
                return FileResult(name, error=error.message)
            raise
        return FileResult(name, document)

    return _read_then(name, book)


def process(args: argparse.Namespace, connections: Connections) -> str:
    names: list[str] = args.files
    results: list[FileResult[pb.FiscalDocument]] = []
    for name in names:
        try:
            results.append(_processed(args, connections.fiscal, name))
        except CaixaError as error:
            # Whatever failed, a rerun cannot book twice: say so, and what was
            # answered already.
            safe = "rerunning every file is safe: fiscal books each access key once"
            if results:
                done = ", ".join(f"{r.file} {process_status(r)}" for r in results)
                error.add_note(
                    f"before it, {len(results)} of {len(names)} files were answered "
                    f"({done}); {safe}"
                )
            elif exit_code_for(error.code) == SERVICE_FAILED:
                error.add_note(f"hint: the outcome is unknown; {safe}")
            raise
    output = results_json(results, "document") if args.json else process_table(results)
    return _done(output, all(document_passed(r) for r in results))


def get(args: argparse.Namespace, connections: Connections) -> str:
    document = connections.fiscal.get_document(args.merchant, args.access_key)
    return views.to_json(document) if args.json else document_detail(document)


def register(args: argparse.Namespace, connections: Connections) -> str:
    registration = connections.fiscal.register_merchant(args.merchant, args.document)
    if args.json:
        return views.to_json(registration)
    return f"merchant {registration.merchant_id} books invoices as {registration.document}"


ACTIONS: dict[str, Callable[[argparse.Namespace, Connections], str]] = {
    "validate": validate,
    "summary": summary,
    "process": process,
    "get": get,
    "register": register,
}


def fiscal(args: argparse.Namespace, connections: Connections) -> str:
    return ACTIONS[args.fiscal_command](args, connections)
