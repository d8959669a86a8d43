"""Authentication for `make run`'s stack: the dev key (shared with `caixa
token`), the JWKS every service verifies with, and the workload tokens the
services call each other with: the dispatcher's toward ingest, consolidado's
toward lancamentos' change feed, fiscal's toward lancamentos' writes. No end
user's token crosses a service hop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from caixa.cli.dev_tokens import (
    DEV_AUDIENCE,
    DEV_ISSUER,
    JWKS_FILE,
    dev_key,
    mint,
    write_jwks,
    write_private,
)

DISPATCHER = "spiffe://caixa.local/ns/caixa/sa/caixa-dispatcher"
CONSOLIDADO = "spiffe://caixa.local/ns/caixa/sa/caixa-consolidado"
FISCAL = "spiffe://caixa.local/ns/caixa/sa/caixa-fiscal"
WORKLOADS = (
    f"{DISPATCHER}=consolidado:ingest;{CONSOLIDADO}=lancamentos:read;{FISCAL}=lancamentos:write"
)
# The workloads' own issuer, as a cluster's service-account issuer is: grants
# go to its tokens only, never to a user's token named after a workload.
WORKLOAD_ISSUER = "caixa-dev-workloads"
WORKLOAD_AUDIENCE = "caixa-workloads"
# Minted at each start of the stack; one left up longer than this must restart.
WORKLOAD_TOKEN_TTL = 7 * 24 * 3600.0


@dataclass(frozen=True)
class StackAuth:
    folder: Path  # <state dir>/auth, where `caixa token` finds the same key
    jwks_file: Path

    @classmethod
    def prepare(cls, state_dir: Path) -> StackAuth:
        folder = state_dir / "auth"
        auth = cls(folder, write_jwks(folder))
        auth.refresh()
        return auth

    def token_file(self, subject: str) -> Path:
        return self.folder / f"{subject.rsplit('/', 1)[-1]}.jwt"

    def refresh(self) -> None:
        """(Re)mints each workload's token file; the services re-read it."""
        key = dev_key(self.folder)
        for subject in (DISPATCHER, CONSOLIDADO, FISCAL):
            token = mint(
                key,
                subject=subject,
                merchants=[],
                scopes=[],
                ttl_seconds=WORKLOAD_TOKEN_TTL,
                issuer=WORKLOAD_ISSUER,
                audience=WORKLOAD_AUDIENCE,
            )
            write_private(self.token_file(subject), token + "\n")

    def env(self, workload: str) -> dict[str, str]:
        """What a service process needs: verify callers, and be `workload`."""
        return {
            "AUTH_JWKS_FILE": str(self.jwks_file),
            "AUTH_ISSUER": DEV_ISSUER,
            "AUTH_AUDIENCE": DEV_AUDIENCE,
            "AUTH_WORKLOADS": WORKLOADS,
            "AUTH_WORKLOAD_ISSUER": WORKLOAD_ISSUER,
            "AUTH_WORKLOAD_AUDIENCE": WORKLOAD_AUDIENCE,
            "AUTH_WORKLOAD_JWKS_FILE": str(self.jwks_file),
            "WORKLOAD_TOKEN_FILE": str(self.token_file(workload)),
        }


def gateway_jwt_sets(state_dir: Path) -> list[str]:
    """`--set` lines that make the gateway check tokens of this stack's key
    (mesh.policy.LocalJwt), as Istio's RequestAuthentication does in the cluster."""
    jwt = "mesh.localTopology.jwt"
    return [
        f"{jwt}.issuer={DEV_ISSUER}",
        f"{jwt}.audiences[0]={DEV_AUDIENCE}",
        f"{jwt}.jwksFile={state_dir / 'auth' / JWKS_FILE}",
    ]
