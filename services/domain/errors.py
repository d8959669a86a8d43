"""Errors the domain and use cases raise; the transport maps them to status codes.

The domain never imports grpc: `services.platform.error_mapping` owns the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One malformed field: its path as the caller spelled it, and the rule it broke."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every error that is the caller's to act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """One or more fields are malformed; each is named in `violations`."""

    def __init__(self, violations: list[FieldViolation], message: str | None = None) -> None:
        if not violations:
            raise ValueError("InvalidArgument needs at least one violation")
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(message or f"invalid request: {summary}")
        self.violations = violations


class Unstorable(InvalidArgument):
    """The database refused an entry that passed validation (a rule it alone knows)."""


class NotFound(DomainError):
    """The addressed resource does not exist (for this merchant)."""


class AlreadyExists(DomainError):
    """An idempotency key was reused with a different payload."""


class FailedPrecondition(DomainError):
    """The request is well-formed but the resource's state forbids it."""


class Unauthenticated(DomainError):
    """No token, or one that is expired, wrongly signed, or for another issuer or audience."""


class PermissionDenied(DomainError):
    """A verified caller asked for a merchant or an RPC its token does not allow."""


class Unavailable(DomainError):
    """A dependency is down; the caller may retry."""


class ViolationCollector:
    """Accumulates field violations so a request reports all of them at once."""

    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix
        self.violations: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(self._prefix + field, description))

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidArgument(self.violations)
