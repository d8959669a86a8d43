"""The summary reads what the invoice says: checked field by field on two nfelib samples
(one with installments and a protocol, one with the tax reform's IBS/CBS totals), and on
every sample for what each must have."""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from services.fiscal.summary import summarize
from services.fiscal.xml_input import parse
from tests.services.fiscal.samples import NFE, SAMPLES, sample_paths

INSTALLMENTS = SAMPLES / "26180875335849000115550010000016871192213331-nfe.xml"
REFORM = SAMPLES / "nfe_reforma_tributaria.xml"


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.name[:24])
def test_every_sample_summarizes(path: Path) -> None:
    root = parse(path.read_bytes())
    summary = summarize(root)
    assert len(summary.access_key) == 44
    assert summary.item_count == len(root.findall(f".//{NFE}det")) > 0
    vnf = root.findtext(f".//{NFE}ICMSTot/{NFE}vNF")
    assert summary.totals["vNF"] == Decimal(vnf or "x")
    assert summary.issuer.document and summary.issued_at.tzinfo is not None
    assert sum((p.amount for p in summary.payments), Decimal(0)) >= 0


def test_installments_payments_and_the_protocol() -> None:
    summary = summarize(parse(INSTALLMENTS.read_bytes()))
    assert (summary.model, summary.series, summary.number) == ("55", "1", "1687")
    assert (summary.direction, summary.environment) == ("1", "1")
    assert summary.issuer.uf == "PE" and summary.recipient is not None
    assert summary.recipient.document == "37148260000119"
    assert [(i.number, i.due, i.amount) for i in summary.installments] == [
        ("001", date(2018, 9, 25), Decimal("2890.00")),
        ("002", date(2018, 11, 4), Decimal("2890.00")),
    ]
    assert [(p.kind, p.label, p.amount) for p in summary.payments] == [
        ("99", "Outros", Decimal("5780.00"))
    ]
    assert summary.protocol is not None and summary.protocol.authorized
    assert summary.protocol.number == "126180042806970"
    assert summary.ibs_cbs_totals == {}


def test_the_tax_reforms_totals() -> None:
    summary = summarize(parse(REFORM.read_bytes()))
    assert summary.ibs_cbs_totals["vBCIBSCBS"] == Decimal("2000.50")
    assert summary.ibs_cbs_totals["gIBS/vIBS"] == Decimal("50")
    assert summary.ibs_cbs_totals["gCBS/vCBS"] == Decimal("87.29")
    assert len(summary.installments) == 3
    assert sum((i.amount for i in summary.installments), Decimal(0)) == summary.totals["vNF"]


def test_a_bare_nfe_has_no_protocol() -> None:
    proc = parse(INSTALLMENTS.read_bytes())
    invoice = proc.find(f"{NFE}NFe")
    assert invoice is not None
    bare = summarize(copy.deepcopy(invoice))
    assert bare.protocol is None
    assert bare.access_key == summarize(proc).access_key
