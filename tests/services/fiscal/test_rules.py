"""Business rules, by mutation: start from a clean nfelib sample, break exactly one thing,
and expect exactly its SEFAZ code (issue 12, "Mutation tests")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from services.fiscal import identifiers, rules
from services.fiscal.xml_input import parse
from tests.services.fiscal.samples import NFE, SAMPLES, sample_paths

NOW = datetime(2026, 12, 1, tzinfo=UTC)
# Samples whose key, parties, totals, payments and dates are consistent as shipped.
CLEAN = [p for p in sample_paths() if p.name.startswith("351808341287450001525500")]
# One of them books no payment (tPag 90), so its vNF can change alone.
NO_PAYMENT = SAMPLES / "35180834128745000152550010000476781421693968-nfe.xml"


def _one(root: etree._Element, path: str) -> etree._Element:
    found = root.find(f".//{NFE}infNFe/" + "/".join(f"{NFE}{p}" for p in path.split("/")))
    assert found is not None, path
    return found


def _rekey(root: etree._Element) -> None:
    """Rebuilds the access key and cDV from the fields, as an issuer would."""
    info = root.find(f".//{NFE}infNFe")
    assert info is not None

    def text(path: str) -> str:
        return (_one(root, path).text or "").strip()

    issued = text("ide/dhEmi")
    body = (
        text("ide/cUF")
        + issued[2:4]
        + issued[5:7]
        + text("emit/CNPJ")
        + text("ide/mod")
        + text("ide/serie").zfill(3)
        + text("ide/nNF").zfill(9)
        + text("ide/tpEmis")
        + text("ide/cNF").zfill(8)
    )
    digit = str(identifiers.key_check_digit(body))
    info.set("Id", f"NFe{body}{digit}")
    _one(root, "ide/cDV").text = digit


def _add(element: etree._Element, amount: str) -> None:
    element.text = f"{Decimal(element.text or '0') + Decimal(amount):.2f}"


def _break_key_digit(root: etree._Element) -> None:
    info = root.find(f".//{NFE}infNFe")
    assert info is not None
    key = info.get("Id", "")
    wrong = str((int(key[-1]) + 1) % 10)
    info.set("Id", key[:-1] + wrong)
    _one(root, "ide/cDV").text = wrong  # the fields agree with the key: only the digit is off


def _break_cnpj(root: etree._Element) -> None:
    cnpj = _one(root, "emit/CNPJ")
    cnpj.text = (cnpj.text or "")[:13] + str((int((cnpj.text or "0")[13]) + 1) % 10)
    _rekey(root)


def _break_item_vprod(root: etree._Element) -> None:
    _add(_one(root, "det/prod/vProd"), "1.00")


def _break_payment(root: etree._Element) -> None:
    _add(_one(root, "pag/detPag/vPag"), "-1.00")


def _break_date(root: etree._Element) -> None:
    _one(root, "ide/dhEmi").text = (NOW + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S-03:00")
    _rekey(root)


MUTATIONS: dict[str, tuple[Callable[[etree._Element], None], str, str]] = {
    "key check digit": (_break_key_digit, "253", "infNFe/@Id"),
    "issuer CNPJ check digit": (_break_cnpj, "207", "infNFe/emit/CNPJ"),
    "one item's vProd": (_break_item_vprod, "564", "infNFe/total/ICMSTot/vProd"),
    "a payment": (_break_payment, "865", "infNFe/pag"),
    "the issue date": (_break_date, "703", "infNFe/ide/dhEmi"),
}


@pytest.mark.parametrize("path", CLEAN, ids=lambda p: p.name[:44])
def test_clean_samples_have_no_finding(path: Path) -> None:
    assert len(CLEAN) >= 10
    assert rules.check(parse(path.read_bytes()), NOW) == []


@pytest.mark.parametrize("what", sorted(MUTATIONS))
@pytest.mark.parametrize("path", CLEAN[:4], ids=lambda p: p.name[:44])
def test_one_break_gives_exactly_its_code(what: str, path: Path) -> None:
    mutate, code, where = MUTATIONS[what]
    root = parse(path.read_bytes())
    mutate(root)
    findings = rules.check(root, NOW)
    assert [(f.code, f.path) for f in findings] == [(code, where)], findings
    assert findings[0].severity is rules.Severity.ERROR and findings[0].message


def test_vnf_alone_gives_610() -> None:
    root = parse(NO_PAYMENT.read_bytes())
    assert rules.check(root, NOW) == []
    _add(_one(root, "total/ICMSTot/vNF"), "1.00")
    assert [f.code for f in rules.check(root, NOW)] == ["610"]


def test_imports_are_exempt_from_the_vnf_formula() -> None:
    root = parse(NO_PAYMENT.read_bytes())
    _add(_one(root, "total/ICMSTot/vNF"), "1.00")
    for cfop in root.iter(f"{NFE}CFOP"):
        cfop.text = "3" + (cfop.text or "")[1:]
    assert rules.check(root, NOW) == []


def test_a_centavo_of_rounding_is_tolerated() -> None:
    root = parse(CLEAN[0].read_bytes())
    _add(_one(root, "det/prod/vProd"), "0.01")
    assert rules.check(root, NOW) == []


def test_change_must_be_what_is_left() -> None:
    root = parse(CLEAN[0].read_bytes())
    pag = _one(root, "pag")
    _add(_one(root, "pag/detPag/vPag"), "5.00")
    assert [f.code for f in rules.check(root, NOW)] == ["866"]
    change = etree.SubElement(pag, f"{NFE}vTroco")
    change.text = "4.00"
    assert [f.code for f in rules.check(root, NOW)] == ["869"]
    change.text = "5.00"
    assert rules.check(root, NOW) == []


def test_recipient_documents_are_checked() -> None:
    root = parse(CLEAN[0].read_bytes())
    dest = root.find(f".//{NFE}dest")
    assert dest is not None
    document = dest.find(f"{NFE}CNPJ")
    if document is None:
        document = dest.find(f"{NFE}CPF")
    assert document is not None
    expected = "208" if etree.QName(document).localname == "CNPJ" else "237"
    document.text = (document.text or "")[:-1] + str((int((document.text or "0")[-1]) + 1) % 10)
    assert [f.code for f in rules.check(root, NOW)] == [expected]
