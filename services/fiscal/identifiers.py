"""The identifiers an NF-e carries, and their check digits: the 44-character access key
(chave de acesso), CNPJ (numeric, and alphanumeric from July 2026) and CPF.

Every character counts as its ASCII code minus 48, so a digit is its own value and a
letter A–Z is 17–42, as the Receita Federal's alphanumeric CNPJ (and NT 2025.001 for
the key) define it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KEY_LENGTH = 44
_KEY = re.compile(r"^[0-9]{6}[0-9A-Z]{12}[0-9]{26}$")
_CNPJ = re.compile(r"^[0-9A-Z]{12}[0-9]{2}$")
_CPF = re.compile(r"^[0-9]{11}$")
# Models 55 (NF-e) and 65 (NFC-e).
MODELS = frozenset({"55", "65"})


def _value(character: str) -> int:
    return ord(character) - 48


def mod11_digit(body: str, weights: list[int]) -> int:
    """11 minus the weighted sum mod 11; 10 and 11 become 0."""
    total = sum(_value(c) * w for c, w in zip(body, weights, strict=True))
    rest = 11 - total % 11
    return 0 if rest >= 10 else rest


def _cycling(length: int, top: int) -> list[int]:
    """Weights 2, 3, …, top, 2, 3, … from the right, as SEFAZ and the CNPJ use them."""
    return [2 + (length - 1 - i) % (top - 1) for i in range(length)]


def key_check_digit(first_43: str) -> int:
    return mod11_digit(first_43, _cycling(43, 9))


def cnpj_is_valid(cnpj: str) -> bool:
    if not _CNPJ.match(cnpj) or len(set(cnpj)) == 1:
        return False
    first = mod11_digit(cnpj[:12], _cycling(12, 9))
    second = mod11_digit(cnpj[:12] + str(first), _cycling(13, 9))
    return cnpj[12:] == f"{first}{second}"


def cpf_is_valid(cpf: str) -> bool:
    if not _CPF.match(cpf) or len(set(cpf)) == 1:
        return False
    digits = [int(c) for c in cpf]
    for size in (9, 10):
        total = sum(d * w for d, w in zip(digits[:size], range(size + 1, 1, -1), strict=True))
        if (total * 10 % 11) % 10 != digits[size]:
            return False
    return True


@dataclass(frozen=True)
class AccessKey:
    """The key's fields, in their order (Manual de Orientação do Contribuinte, 2.2.6)."""

    uf: str  # cUF, IBGE code of the issuer's state
    year_month: str  # AAMM of the issue date
    issuer: str  # CNPJ (or CPF, zero-padded)
    model: str
    series: str
    number: str
    emission: str  # tpEmis
    code: str  # cNF
    check_digit: str

    @property
    def digits_ok(self) -> bool:
        return self.check_digit == str(key_check_digit(self.text[:43]))

    @property
    def text(self) -> str:
        return (
            f"{self.uf}{self.year_month}{self.issuer}{self.model}{self.series}"
            f"{self.number}{self.emission}{self.code}{self.check_digit}"
        )


def parse_key(text: str) -> AccessKey | None:
    """The key's fields, or None when it is not 44 characters of the right kinds."""
    if len(text) != KEY_LENGTH or not _KEY.match(text):
        return None
    return AccessKey(
        uf=text[0:2],
        year_month=text[2:6],
        issuer=text[6:20],
        model=text[20:22],
        series=text[22:25],
        number=text[25:34],
        emission=text[34:35],
        code=text[35:43],
        check_digit=text[43],
    )
