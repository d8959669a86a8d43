"""Keys from an issuer's JWKS URL (a real HTTP server on loopback): rotation,
the issuer being down, and many callers at once; and workload grants bound to
the workloads' own issuer."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from caixa.cli.dev_tokens import dev_key, mint, public_jwk
from services.domain.errors import Unauthenticated, Unavailable
from services.platform.access import Workloads
from services.platform.auth import TokenVerifier, Verifiers
from services.platform.jwks import RemoteJwks, StaticJwks

ISSUER, AUDIENCE = "https://idp.test/", "caixa"


class JwksServer:
    """Serves `self.jwks`; `up = False` answers 503, as an issuer in trouble."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.up = True
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps(outer.jwks).encode()
                self.send_response(200 if outer.up else 503)
                self.send_header("content-type", "application/json")
                self.end_headers()
                if outer.up:
                    self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/jwks.json"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def server() -> Iterator[JwksServer]:
    running = JwksServer()
    yield running
    running.close()


def token(folder: Path, *, issuer: str = ISSUER, audience: str = AUDIENCE, sub: str = "u") -> str:
    return mint(
        dev_key(folder),
        subject=sub,
        merchants=["m1"],
        scopes=["lancamentos:read"],
        ttl_seconds=60,
        issuer=issuer,
        audience=audience,
    )


def remote(url: str, **timing: float) -> TokenVerifier:
    return TokenVerifier(RemoteJwks(url, **timing), issuer=ISSUER, audience=AUDIENCE)


def jwks_of(*folders: Path) -> dict[str, Any]:
    return {"keys": [public_jwk(dev_key(folder)) for folder in folders]}


async def test_a_rotated_key_is_fetched_and_a_retired_one_refused(
    server: JwksServer, tmp_path: Path
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    server.jwks = jwks_of(old)
    verifier = TokenVerifier(
        RemoteJwks(server.url, cooldown_seconds=0), issuer=ISSUER, audience=AUDIENCE
    )
    assert (await verifier.verify(token(old))).merchants == {"m1"}
    server.jwks = jwks_of(new)  # the issuer rotates: the old key is gone
    assert (await verifier.verify(token(new))).subject == "u"
    with pytest.raises(Unauthenticated, match="key this service does not know"):
        await verifier.verify(token(old, sub="another"))


async def test_an_issuer_down_before_any_fetch_is_unavailable_then_heals(
    server: JwksServer, tmp_path: Path
) -> None:
    server.jwks, server.up = jwks_of(tmp_path), False
    verifier = TokenVerifier(
        RemoteJwks(server.url, cooldown_seconds=0), issuer=ISSUER, audience=AUDIENCE
    )
    with pytest.raises(Unavailable, match="cannot be fetched"):
        await verifier.verify(token(tmp_path))
    server.up = True
    assert (await verifier.verify(token(tmp_path))).subject == "u"


async def test_known_keys_keep_working_while_the_issuer_is_down(
    server: JwksServer, tmp_path: Path
) -> None:
    server.jwks = jwks_of(tmp_path)
    keys = RemoteJwks(server.url, refresh_seconds=0, cooldown_seconds=0)
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
    await verifier.verify(token(tmp_path))
    server.up = False
    fetches = server.fetches
    # Each call is due for a refresh, which fails: the keys known still verify.
    assert (await verifier.verify(token(tmp_path, sub="other"))).subject == "other"
    assert server.fetches > fetches


@pytest.mark.parametrize("broken", [{"keys": []}, ["not", "a", "jwks"], {"keys": "x"}])
async def test_a_broken_jwks_keeps_the_keys_known(
    server: JwksServer, tmp_path: Path, broken: object
) -> None:
    server.jwks = jwks_of(tmp_path)
    verifier = remote(server.url, refresh_seconds=0, cooldown_seconds=0)
    await verifier.verify(token(tmp_path))
    server.jwks = broken  # type: ignore[assignment]
    # Due for a refresh on every call; the set fetched is of no use: keep the old one.
    assert (await verifier.verify(token(tmp_path, sub="again"))).subject == "again"


async def test_many_callers_with_a_new_key_cause_one_fetch(
    server: JwksServer, tmp_path: Path
) -> None:
    server.jwks = jwks_of(tmp_path / "a")
    keys = RemoteJwks(server.url, cooldown_seconds=30)
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
    await verifier.verify(token(tmp_path / "a"))
    assert server.fetches == 1
    tokens = [token(tmp_path / "a", sub=f"u{i}") for i in range(20)]
    await asyncio.gather(*(verifier.verify(t) for t in tokens))
    assert server.fetches == 1  # known key, fresh set: no fetch at all
    server.jwks = jwks_of(tmp_path / "a", tmp_path / "b")
    keys._cooldown = 0
    fresh = [token(tmp_path / "b", sub=f"v{i}") for i in range(20)]
    await asyncio.gather(*(verifier.verify(t) for t in fresh))
    assert server.fetches == 2, server.fetches


async def test_workload_grants_hold_only_for_the_workloads_issuer(tmp_path: Path) -> None:
    cluster = "https://kubernetes.default.svc.cluster.local"
    dispatcher = "system:serviceaccount:caixa:caixa-dispatcher"
    users_key, cluster_key = tmp_path / "users", tmp_path / "cluster"
    verifiers = Verifiers(
        [
            TokenVerifier(StaticJwks(jwks_of(users_key)), issuer=ISSUER, audience=AUDIENCE),
            TokenVerifier(
                StaticJwks(jwks_of(cluster_key)), issuer=cluster, audience="caixa-workloads"
            ),
        ]
    )
    workloads = Workloads.parse(f"{dispatcher}=consolidado:ingest", issuer=cluster)
    real = await verifiers.verify(
        token(cluster_key, issuer=cluster, audience="caixa-workloads", sub=dispatcher)
    )
    assert workloads.scopes_of(real) == {"consolidado:ingest"}
    # The users' identity provider issuing a token under the workload's name.
    posing = await verifiers.verify(token(users_key, sub=dispatcher))
    assert workloads.scopes_of(posing) == frozenset()
    # A cluster token for another audience (e.g. the API server's) is refused.
    with pytest.raises(Unauthenticated, match="not meant for"):
        await verifiers.verify(token(cluster_key, issuer=cluster, sub=dispatcher))
    with pytest.raises(Unauthenticated, match="not issued by"):
        await verifiers.verify(token(users_key, issuer="https://elsewhere/"))
