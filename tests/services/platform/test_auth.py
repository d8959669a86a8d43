"""Token verification on its own: what a token must be to be believed."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError

from caixa.cli.dev_tokens import DEV_AUDIENCE, DEV_ISSUER, public_jwk
from services.domain.errors import Unauthenticated
from services.platform.access import Workloads
from services.platform.auth import TokenVerifier, Verifiers, bearer_token
from services.platform.jwks import StaticJwks
from services.platform.settings import ServiceSettings
from services.platform.workload_identity import WorkloadToken
from tests.support.auth import Issuer


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    return Issuer.create(tmp_path / "auth")


def verifier(issuer: Issuer) -> TokenVerifier:
    keys = StaticJwks.from_file(issuer.jwks_file)
    return TokenVerifier(keys, issuer=DEV_ISSUER, audience=DEV_AUDIENCE)


def signed(issuer: Issuer, body: dict[str, object]) -> str:
    return jwt.encode(
        body, issuer.key, algorithm="ES256", headers={"kid": public_jwk(issuer.key)["kid"]}
    )


async def test_a_token_signed_with_none_or_a_shared_secret_is_refused(issuer: Issuer) -> None:
    claims = {"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": "x", "exp": time.time() + 60}
    kid = public_jwk(issuer.key)["kid"]
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"kid": kid})
    with pytest.raises(Unauthenticated):
        await verifier(issuer).verify(unsigned)
    # HS256 under the key's kid: only ES256/RS256 are ever accepted.
    confused = jwt.encode(claims, b"s" * 32, algorithm="HS256", headers={"kid": kid})
    with pytest.raises(Unauthenticated):
        await verifier(issuer).verify(confused)


def test_a_jwks_without_an_asymmetric_key_is_refused_at_start_up() -> None:
    secret = base64.urlsafe_b64encode(b"s" * 32).decode()
    jwks = {"keys": [{"kty": "oct", "k": secret, "kid": "k", "alg": "HS256"}]}
    with pytest.raises(ValueError, match="no ES256/RS256 key"):
        StaticJwks(jwks)


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"merchants": "m1"}, "merchants claim"),
        ({"scope": ["admin"]}, "scope claim"),
    ],
)
async def test_malformed_claims_are_unauthenticated(
    issuer: Issuer, claims: dict[str, object], words: str
) -> None:
    body = {"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": "x", "exp": time.time() + 60, **claims}
    token = jwt.encode(
        body, issuer.key, algorithm="ES256", headers={"kid": public_jwk(issuer.key)["kid"]}
    )
    with pytest.raises(Unauthenticated, match=words):
        await verifier(issuer).verify(token)


async def test_a_token_without_expiry_is_refused(issuer: Issuer) -> None:
    body = {"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": "x"}
    token = jwt.encode(
        body, issuer.key, algorithm="ES256", headers={"kid": public_jwk(issuer.key)["kid"]}
    )
    with pytest.raises(Unauthenticated, match="no exp claim"):
        await verifier(issuer).verify(token)


async def test_a_remembered_token_still_expires(issuer: Issuer) -> None:
    keys = StaticJwks.from_file(issuer.jwks_file)
    # No clock-skew allowance, to see it expire within the test.
    check = Verifiers(
        [TokenVerifier(keys, issuer=DEV_ISSUER, audience=DEV_AUDIENCE, leeway_seconds=0)]
    )
    token = issuer.token(["m1"], ttl=1)
    first = await check.verify(token)
    assert await check.verify(token) is first  # remembered, not verified again
    await asyncio.sleep(1.5)
    with pytest.raises(Unauthenticated, match="expired"):
        await check.verify(token)


@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Basic abc"),), (("authorization", "Bearer "),)],
)
def test_no_bearer_token_is_unauthenticated(metadata: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(Unauthenticated):
        bearer_token(metadata)


def test_workload_grants_parse_and_refuse_junk() -> None:
    grants = Workloads.parse("spiffe://a=consolidado:ingest; b = x y ;")
    assert grants.grants == {"spiffe://a": {"consolidado:ingest"}, "b": {"x", "y"}}
    with pytest.raises(ValueError, match="subject=scope"):
        Workloads.parse("just-a-subject")


def test_a_rotated_workload_token_is_used_at_once(tmp_path: Path) -> None:
    path = tmp_path / "token.jwt"
    path.write_text("first\n")
    token = WorkloadToken(path)
    assert token.header() == ("authorization", "Bearer first")
    path.write_text("second-token\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert token.header() == ("authorization", "Bearer second-token")


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"auth_workloads": "spiffe://x=consolidado:ingest"}, "needs AUTH_WORKLOAD_ISSUER"),
        ({"auth_workload_issuer": DEV_ISSUER}, "must differ from AUTH_ISSUER"),
    ],
)
def test_workload_grants_need_the_workloads_own_issuer(values: dict[str, str], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        ServiceSettings.model_validate(values)
