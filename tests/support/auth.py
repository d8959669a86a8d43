"""A token issuer for tests: its own key and JWKS, and tokens of every kind,
good and bad (signed with another key, expired, for another issuer...)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from caixa.cli.dev_tokens import DEV_AUDIENCE, DEV_ISSUER, dev_key, mint, write_jwks
from tooling.devstack.auth import (
    CONSOLIDADO,
    DISPATCHER,
    FISCAL,
    WORKLOAD_AUDIENCE,
    WORKLOAD_ISSUER,
    WORKLOADS,
)

__all__ = [
    "CONSOLIDADO",
    "DISPATCHER",
    "EVERY_SCOPE",
    "FISCAL",
    "WORKLOAD_AUDIENCE",
    "WORKLOAD_ISSUER",
    "Issuer",
    "bearer",
]

EVERY_SCOPE = ("lancamentos:write", "lancamentos:read", "consolidado:read", "admin")


@dataclass(frozen=True)
class Issuer:
    key: ec.EllipticCurvePrivateKey
    jwks_file: Path

    @classmethod
    def create(cls, folder: Path) -> Issuer:
        key = dev_key(folder)
        return cls(key, write_jwks(folder))

    def settings(self) -> dict[str, object]:
        """The service settings that make it verify this issuer's tokens."""
        return {
            "auth_jwks_file": str(self.jwks_file),
            "auth_issuer": DEV_ISSUER,
            "auth_audience": DEV_AUDIENCE,
            "auth_workloads": WORKLOADS,
            "auth_workload_issuer": WORKLOAD_ISSUER,
            "auth_workload_audience": WORKLOAD_AUDIENCE,
            "auth_workload_jwks_file": str(self.jwks_file),
        }

    def workload_token(self, subject: str) -> str:
        """A workload's token, of the workloads' issuer, as `make run` mints it."""
        return self.token(
            [], [], subject=subject, issuer=WORKLOAD_ISSUER, audience=WORKLOAD_AUDIENCE
        )

    def token(
        self,
        merchants: Sequence[str] = ("*",),
        scopes: Sequence[str] = EVERY_SCOPE,
        *,
        subject: str = "tester",
        ttl: float = 600,
        issuer: str = DEV_ISSUER,
        audience: str = DEV_AUDIENCE,
        key: ec.EllipticCurvePrivateKey | None = None,
    ) -> str:
        return mint(
            key or self.key,
            subject=subject,
            merchants=merchants,
            scopes=scopes,
            ttl_seconds=ttl,
            issuer=issuer,
            audience=audience,
        )


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
