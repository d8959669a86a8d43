"""`caixa fiscal` under test: NF-e files on disk, the CLI run in a thread beside
the server's event loop, and its tables read back cell by cell."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from caixa.cli.main import main as cli
from tooling.fiscal_documents import SAMPLES, Signer, cancellation, invoice

THREE = [
    ("1", "2018-08-24", "100.00"),
    ("2", "2018-09-24", "100.00"),
    ("3", "2018-10-24", "147.28"),
]
# nfelib's sample with one finding (502: its key's check digit is not its cDV) and
# a signature broken by later edits.
SAMPLE_WITH_FINDINGS = SAMPLES / "26180875335849000115550010000016871192213331-nfe.xml"
SAMPLE_KEY = "26180875335849000115550010000016871192213331"


@dataclass(frozen=True)
class FiscalFiles:
    """Writes the documents a test sends into its own folder; each returns the path."""

    folder: Path
    signer: Signer

    def write(self, name: str, data: bytes) -> str:
        path = self.folder / name
        path.write_bytes(data)
        return str(path)

    def invoice(self, name: str = "invoice.xml", **options: Any) -> str:
        return self.write(name, invoice(self.signer, **options))

    def cancellation(self, name: str = "cancellation.xml") -> str:
        return self.write(name, cancellation(self.signer))

    def sample_with_findings(self) -> str:
        path = self.folder / SAMPLE_WITH_FINDINGS.name
        shutil.copyfile(SAMPLE_WITH_FINDINGS, path)
        return str(path)

    def not_xml(self, name: str = "notes.txt") -> str:
        return self.write(name, b"not xml at all")

    def missing(self, name: str = "missing.xml") -> str:
        return str(self.folder / name)


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def rows(self) -> dict[str, dict[str, str]]:
        """The table's rows by their first cell (the file), each by header."""
        rows = table_rows(self.out)
        return {row[next(iter(row))]: row for row in rows}


def table_rows(text: str) -> list[dict[str, str]]:
    """A `render_table` table's rows, each cell by its header. The rule under the
    headers gives each column's span; the last column runs to the line's end."""
    lines = text.rstrip("\n").splitlines()
    rule_at = next(i for i, line in enumerate(lines) if re.fullmatch(r"[- ]+", line))
    spans = [m.span() for m in re.finditer(r"-+", lines[rule_at])]

    def cells(line: str) -> list[str]:
        ends = [end for _, end in spans[:-1]] + [len(line)]
        return [line[start:end].strip() for (start, _), end in zip(spans, ends, strict=True)]

    headers = cells(lines[rule_at - 1])
    body = []
    for line in lines[rule_at + 1 :]:
        if not line.strip():
            break
        body.append(dict(zip(headers, cells(line), strict=True)))
    return body


async def run_caixa(capsys: pytest.CaptureFixture[str], *argv: str) -> CliRun:
    """`caixa ARGV...` in a thread (the servers' event loop keeps running)."""
    code = await asyncio.to_thread(cli, list(argv))
    out, err = capsys.readouterr()
    return CliRun(code, out, err)
