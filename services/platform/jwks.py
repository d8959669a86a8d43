"""Where a service gets the keys that sign the tokens it accepts: a JWKS file,
or an issuer's JWKS URL, fetched off the event loop and refreshed.

A remote JWKS is fetched at the first call, then every `refresh_seconds`, and again
(at most once per `cooldown_seconds`) when a token names a key not seen yet,
as an issuer rotating its keys does. While it cannot be fetched the keys
already known keep working; with none known, calls get a retryable UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import jwt

from services.domain.errors import Unavailable

log = logging.getLogger(__name__)

# Asymmetric only: a shared-secret (HS*) key in a JWKS would let anyone who can
# read the JWKS mint tokens, and "none" is no signature at all.
ALGORITHMS = ("ES256", "RS256")


def usable_keys(jwks: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    """The JWKS's ES256/RS256 keys by kid; others (and keys without a kid) ignored."""
    keys = jwt.PyJWKSet.from_dict(dict(jwks)).keys
    return {key.key_id: key for key in keys if key.key_id and key.algorithm_name in ALGORITHMS}


class KeySource(Protocol):
    async def key(self, kid: str) -> jwt.PyJWK | None: ...


class StaticJwks:
    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = usable_keys(jwks)
        if not self._keys:
            raise ValueError(f"the JWKS holds no {'/'.join(ALGORITHMS)} key with a kid")

    @classmethod
    def from_file(cls, path: Path) -> StaticJwks:
        return cls(json.loads(path.read_text()))

    async def key(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.get(kid)


class RemoteJwks:
    def __init__(
        self,
        url: str,
        *,
        fetch_timeout: float = 2.0,
        refresh_seconds: float = 300.0,
        cooldown_seconds: float = 30.0,
    ) -> None:
        self._url = url
        self._timeout = fetch_timeout
        self._refresh = refresh_seconds
        self._cooldown = cooldown_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    def _fetch(self) -> dict[str, jwt.PyJWK]:
        with urllib.request.urlopen(self._url, timeout=self._timeout) as response:
            return usable_keys(json.loads(response.read()))

    async def refresh(self) -> None:
        """Fetches the JWKS now, in a thread. A failure, or a set without a
        usable key, keeps the keys known: a broken issuer must not log out
        every caller that a working one let in."""
        self._fetched_at = time.monotonic()
        try:
            keys = await asyncio.to_thread(self._fetch)
        except Exception as error:  # any fetch or parse failure is the issuer's
            log.warning("JWKS %s not fetched: %s", self._url, error)
            return
        if not keys:
            log.warning("JWKS %s holds no %s key; keeping the known ones", self._url, ALGORITHMS)
            return
        self._keys = keys

    def _due(self, kid: str) -> bool:
        since = time.monotonic() - self._fetched_at
        return since > self._refresh or (kid not in self._keys and since > self._cooldown)

    async def key(self, kid: str) -> jwt.PyJWK | None:
        if self._due(kid):
            async with self._lock:
                if self._due(kid):  # calls that queued here find it done
                    await self.refresh()
        if not self._keys:
            raise Unavailable(f"the token keys at {self._url} cannot be fetched")
        return self._keys.get(kid)


def key_source(file: str | None, url: str | None) -> KeySource | None:
    """The JWKS file, else the JWKS URL; None when neither is configured."""
    if file:
        return StaticJwks.from_file(Path(file))
    if url:
        return RemoteJwks(url)
    return None
