"""Data the database refuses for good (SQLSTATE classes 22 and 23: a value out of
range, a constraint violated): sending it again fails again, so it is the
caller's INVALID_ARGUMENT, never INTERNAL and never worth a retry."""

from __future__ import annotations

import asyncpg

from services.domain.errors import FieldViolation, Unstorable


def database_refusal(exc: BaseException) -> asyncpg.PostgresError | None:
    """The driver's data or integrity error behind `exc` (SQLAlchemy wraps it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, asyncpg.DataError | asyncpg.IntegrityConstraintViolationError):
            return current
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException) and orig is not current:
            found = database_refusal(orig)
            if found is not None:
                return found
        current = current.__cause__ or current.__context__
    return None


def unstorable(refusal: asyncpg.PostgresError, field: str, what: str) -> Unstorable:
    reason = f"the database cannot store {what}: {refusal.message} (SQLSTATE {refusal.sqlstate})"
    return Unstorable([FieldViolation(field, reason)], reason)
