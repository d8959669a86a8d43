"""Check digits of the access key, CNPJ (numeric and alphanumeric) and CPF."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.fiscal import identifiers
from services.fiscal.xml_input import parse
from tests.services.fiscal.samples import NFE, sample_paths


def _key_and_issuer(path: Path) -> tuple[str, str]:
    root = parse(path.read_bytes())
    info = root.find(f".//{NFE}infNFe")
    assert info is not None
    match = re.search(r"[0-9]{44}", info.get("Id", ""))
    assert match, path.name
    emit = info.find(f"{NFE}emit")
    assert emit is not None
    return match.group(), emit.findtext(f"{NFE}CNPJ") or emit.findtext(f"{NFE}CPF") or ""


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.name[:24])
def test_every_samples_key_and_issuer_check_out(path: Path) -> None:
    text, issuer = _key_and_issuer(path)
    key = identifiers.parse_key(text)
    assert key is not None and key.text == text
    assert key.digits_ok
    assert key.model in identifiers.MODELS
    assert identifiers.cnpj_is_valid(issuer)


@pytest.mark.parametrize("path", sample_paths()[:3], ids=lambda p: p.name[:24])
def test_any_other_check_digit_fails(path: Path) -> None:
    text, issuer = _key_and_issuer(path)
    for digit in "0123456789":
        if digit == text[43]:
            continue
        key = identifiers.parse_key(text[:43] + digit)
        assert key is not None and not key.digits_ok
        assert not identifiers.cnpj_is_valid(issuer[:13] + str((int(issuer[13]) + 1) % 10))


def test_alphanumeric_cnpj() -> None:
    # The Receita Federal's own example: 12.ABC.345/01DE-35.
    assert identifiers.cnpj_is_valid("12ABC34501DE35")
    assert not identifiers.cnpj_is_valid("12ABC34501DE36")
    assert not identifiers.cnpj_is_valid("12ABC34501DEA5")  # the check digits stay numeric
    assert not identifiers.cnpj_is_valid("12abc34501de35")  # upper case only
    # A key may carry one: its check digit counts letters as ASCII - 48 too.
    body = "35" + "2607" + "12ABC34501DE35" + "55" + "001" + "000000123" + "1" + "12345678"
    check = identifiers.key_check_digit(body)
    key = identifiers.parse_key(body + str(check))
    assert key is not None and key.digits_ok and key.issuer == "12ABC34501DE35"


@pytest.mark.parametrize(
    ("cnpj", "valid"),
    [
        ("11222333000181", True),
        ("11222333000180", False),
        ("00000000000000", False),
        ("1122233300018", False),
        ("112223330001811", False),
    ],
)
def test_numeric_cnpj(cnpj: str, valid: bool) -> None:
    assert identifiers.cnpj_is_valid(cnpj) is valid


@pytest.mark.parametrize(
    ("cpf", "valid"),
    [
        ("52998224725", True),
        ("52998224724", False),
        ("11111111111", False),
        ("5299822472", False),
        ("5299822472A", False),
    ],
)
def test_cpf(cpf: str, valid: bool) -> None:
    assert identifiers.cpf_is_valid(cpf) is valid


@pytest.mark.parametrize(
    "text",
    ["", "1" * 43, "1" * 45, "35" + "A" * 42, "3518083412874500015255001000047428192000749X"],
)
def test_malformed_keys_parse_to_nothing(text: str) -> None:
    assert identifiers.parse_key(text) is None
