"""The official XSDs, compiled once: every nfelib sample that the schema accepts passes,
the four it refuses are refused for what is wrong with them, and one broken field is
reported where it is."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lxml import etree

from services.fiscal import schemas
from services.fiscal.xml_input import kind, parse
from tests.services.fiscal.samples import NFE, SAMPLES, sample_paths

SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"
# The samples nfelib ships that the official schema refuses, and why.
KNOWN_INVALID = {
    # Signatures stripped from these authorized invoices.
    "42210775277525000178550030000266631762885493-procNFe.xml": [SIGNATURE],
    "42211275277525000178550030000276771368212013-procNFe.xml": [SIGNATURE],
    "42220575277525000178550030000292481295366801-procNFe.xml": [SIGNATURE],
    # An Id without its "NFe" prefix, an address out of order, no signature, no protocol.
    "NFe35200159594315000157550010000000012062777161.xml": [
        "attribute 'Id'",
        "xBairro",
        SIGNATURE,
        "protNFe",
    ],
}


def _errors(path: Path) -> list[schemas.SchemaError]:
    root = parse(path.read_bytes())
    return schemas.schema_errors(root, kind(root))


def test_the_known_invalid_samples_are_still_there() -> None:
    assert set(KNOWN_INVALID) <= {p.name for p in sample_paths()}


@pytest.mark.parametrize(
    "path", [p for p in sample_paths() if p.name not in KNOWN_INVALID], ids=lambda p: p.name[:24]
)
def test_valid_samples_pass(path: Path) -> None:
    assert _errors(path) == []


@pytest.mark.parametrize("name", sorted(KNOWN_INVALID))
def test_invalid_samples_fail_for_their_reasons(name: str) -> None:
    messages = [e.message for e in _errors(SAMPLES / name)]
    assert len(messages) == len(KNOWN_INVALID[name]), messages
    for message, expected in zip(messages, KNOWN_INVALID[name], strict=True):
        assert expected in message


def test_one_broken_field_is_reported_at_its_path() -> None:
    path = next(p for p in sample_paths() if p.name not in KNOWN_INVALID)
    root = parse(path.read_bytes())
    total = root.find(f".//{NFE}ICMSTot/{NFE}vNF")
    assert total is not None
    total.text = "12,50"  # a comma: not the layout's decimal
    [error] = schemas.schema_errors(root, kind(root))
    assert "vNF" in error.message and error.line > 0
    assert root.getroottree().getpath(total).count("/") == error.path.count("/")


def test_each_schema_is_compiled_once_per_thread() -> None:
    first = schemas.schema("NFe")
    assert schemas.schema("NFe") is first
    assert isinstance(first, etree.XMLSchema)
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(schemas.schema, "NFe").result() is not first


def test_threads_validating_at_once_each_get_their_own_errors() -> None:
    """lxml keeps a validation's errors in the schema object: shared between the
    worker threads, a document could read another's errors, or none."""
    valid = [p for p in sample_paths() if p.name not in KNOWN_INVALID][:4]
    invalid = [SAMPLES / name for name in sorted(KNOWN_INVALID)]
    roots = [(parse(p.read_bytes()), p) for p in [*valid, *invalid]]
    expected = {p: [e.message for e in _errors(p)] for _, p in roots}

    def check(round_: int) -> list[str]:
        wrong = []
        for root, path in roots[round_ % len(roots) :] + roots[: round_ % len(roots)]:
            got = [e.message for e in schemas.schema_errors(root, kind(root))]
            if got != expected[path]:
                wrong.append(f"{path.name}: {got}")
        return wrong

    with ThreadPoolExecutor(4) as pool:
        wrong = [w for found in pool.map(check, range(120)) for w in found]
    assert wrong == []
