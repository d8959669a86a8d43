"""Opaque keyset page tokens (AIP-158) for ListLancamentos.

A token holds the position after the last entry of a page, (value_date,
sequence), and a digest of the query it belongs to, so a token replayed with
other filters is rejected instead of silently skipping entries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import date

from services.domain.errors import ViolationCollector

_VERSION = 1
# Sequences are PostgreSQL bigints; a token is only ever made from a stored one.
_MAX_SEQUENCE = 2**63 - 1


@dataclass(frozen=True)
class PagePosition:
    value_date: date
    sequence: int


def query_digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def encode(position: PagePosition, digest: str) -> str:
    raw = json.dumps(
        {"v": _VERSION, "q": digest, "d": position.value_date.isoformat(), "s": position.sequence},
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(errors: ViolationCollector, field: str, token: str, digest: str) -> PagePosition | None:
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or data.get("v") != _VERSION:
            raise ValueError("unknown token version")
        sequence, value_date = data["s"], data["d"]
        # JSON has no int type of its own: 1.5, true, 1e999 and 10**20 all parse.
        if type(sequence) is not int or not 0 <= sequence <= _MAX_SEQUENCE:
            raise ValueError("sequence out of range")
        if not isinstance(value_date, str):
            raise ValueError("no date")
        position = PagePosition(date.fromisoformat(value_date), sequence)
        matches = data.get("q") == digest
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        errors.add(field, "is not a page token issued by this API; omit it to start over")
        return None
    if not matches:
        errors.add(
            field,
            "belongs to a query with other merchant_id or filters; repeat the original "
            "filters or omit page_token to start over",
        )
        return None
    return position
