"""Who is calling: bearer tokens verified by the service itself.

Every service verifies the token on every call (signature, issuer, audience,
expiry) with PyJWT against the JWKS it is configured with; nothing a client
could set in a header is trusted instead. What a verified caller may do is
services.platform.access's concern.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from services.domain.errors import Unauthenticated
from services.platform.jwks import KeySource

ALL_MERCHANTS = "*"


@dataclass(frozen=True)
class Principal:
    """A verified caller: its subject, the merchants it may act for, its scopes."""

    subject: str
    merchants: frozenset[str]
    scopes: frozenset[str]
    issuer: str = ""
    valid_until: float = float("inf")  # exp, plus the clock-skew leeway

    @property
    def expired(self) -> bool:
        return time.time() > self.valid_until

    @property
    def every_merchant(self) -> bool:
        return ALL_MERCHANTS in self.merchants

    def acts_for(self, merchant_id: str) -> bool:
        return self.every_merchant or merchant_id in self.merchants


def bearer_token(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """The token of an `authorization: Bearer …` header; Unauthenticated if absent."""
    values = [v for k, v in metadata or () if k == "authorization"]
    if not values:
        raise Unauthenticated("no bearer token: send `authorization: Bearer <JWT>`")
    if len(values) > 1:
        raise Unauthenticated("more than one authorization header")
    value = values[0].decode() if isinstance(values[0], bytes) else values[0]
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the authorization header is not `Bearer <JWT>`")
    return token.strip()


class TokenVerifier:
    """Verifies JWTs of one issuer, for one audience, with the keys of `keys`."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway_seconds: float = 30.0,
    ) -> None:
        self.issuer = issuer
        self._keys = keys
        self._audience = audience
        self._leeway = leeway_seconds

    async def verify(self, token: str) -> Principal:
        return _principal(await self._claims(token), self._leeway)

    async def _claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            key = await self._keys.key(str(header.get("kid")))
            if key is None:
                raise Unauthenticated("the token is signed with a key this service does not know")
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[key.algorithm_name],
                issuer=self.issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"the token is not issued by {self.issuer}") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"the token is not meant for {self._audience}") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the token's signature is wrong") from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"the token has no {error.claim} claim") from None
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the token is not a valid JWT ({error})") from None
        return claims


class Verifiers:
    """The issuers a service trusts (users' and, apart, workloads'), each with
    its keys and audience: a token is judged by the one its `iss` names.
    Verified tokens are remembered (by hash) until they expire, so a client
    reusing its token pays for the signature once and for a hash after."""

    def __init__(self, verifiers: Sequence[TokenVerifier], *, cache_size: int = 10_000) -> None:
        self._by_issuer = {v.issuer: v for v in verifiers}
        if len(self._by_issuer) < len(verifiers):
            raise ValueError("two trusted issuers have the same name; each needs its own")
        self._cache: OrderedDict[bytes, Principal] = OrderedDict()
        self._cache_size = cache_size

    async def verify(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(digest)
        if cached is not None and not cached.expired:
            self._cache.move_to_end(digest)
            return cached
        principal = await self._verifier_of(token).verify(token)
        self._cache[digest] = principal
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    def _verifier_of(self, token: str) -> TokenVerifier:
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the token is not a valid JWT ({error})") from None
        verifier = self._by_issuer.get(str(issuer))
        if verifier is None:
            trusted = " or ".join(sorted(self._by_issuer))
            raise Unauthenticated(f"the token is not issued by {trusted}")
        return verifier


def _principal(claims: Mapping[str, Any], leeway: float) -> Principal:
    merchants = claims.get("merchants", [])
    scope = claims.get("scope", "")
    if not isinstance(merchants, list) or not all(isinstance(m, str) for m in merchants):
        raise Unauthenticated("the token's merchants claim is not a list of merchant ids")
    if not isinstance(scope, str):
        raise Unauthenticated("the token's scope claim is not a space-separated string")
    return Principal(
        str(claims["sub"]),
        frozenset(merchants),
        frozenset(scope.split()),
        str(claims["iss"]),
        float(claims["exp"]) + leeway,
    )
