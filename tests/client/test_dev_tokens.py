"""`caixa token`: one JWT on stdout, signed with the stack's dev key, which the
command creates if missing and `make run` reuses (the same file)."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest

from caixa.cli.dev_tokens import DEV_AUDIENCE, DEV_ISSUER, dev_key, stack_dir, write_jwks
from services.domain.errors import Unauthenticated
from services.platform.auth import TokenVerifier
from services.platform.jwks import StaticJwks


def caixa(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "CAIXA_STACK_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "caixa.cli", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_token_is_one_line_the_services_accept(tmp_path: Path) -> None:
    done = caixa(
        "token",
        "--merchant",
        "m1",
        "--merchant",
        "m2",
        "--scope",
        "lancamentos:read admin",
        "--ttl",
        "30m",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert done.stdout.count("\n") == 1 and token.count(".") == 2
    # The key was made where `make run` keeps its state, and the services'
    # JWKS (written from the same key) verifies the token.
    auth = tmp_path / ".devstack" / "auth"
    assert (auth / "dev-key.pem").stat().st_mode & 0o077 == 0
    keys = StaticJwks.from_file(write_jwks(auth))
    principal = await TokenVerifier(keys, issuer=DEV_ISSUER, audience=DEV_AUDIENCE).verify(token)
    assert principal.merchants == {"m1", "m2"}
    assert principal.scopes == {"lancamentos:read", "admin"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert 1790 <= claims["exp"] - claims["iat"] <= 1800


def test_a_folder_below_the_checkout_uses_its_key(tmp_path: Path) -> None:
    (tmp_path / ".devstack").mkdir()
    below = tmp_path / "a" / "b"
    below.mkdir(parents=True)
    assert stack_dir(below) == tmp_path / ".devstack"
    done = caixa("token", "--merchant", "*", "--scope", "admin", cwd=below)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".devstack" / "auth" / "dev-key.pem").exists()
    assert not (below / ".devstack").exists()


async def test_another_stack_dir_means_another_key(tmp_path: Path) -> None:
    one = caixa("token", "--merchant", "m1", "--scope", "admin", cwd=tmp_path)
    other = caixa(
        "token",
        "--merchant",
        "m1",
        "--scope",
        "admin",
        cwd=tmp_path,
        CAIXA_STACK_DIR=str(tmp_path / "elsewhere"),
    )
    keys = StaticJwks.from_file(write_jwks(tmp_path / ".devstack" / "auth"))
    verifier = TokenVerifier(keys, issuer=DEV_ISSUER, audience=DEV_AUDIENCE)
    await verifier.verify(one.stdout.strip())
    with pytest.raises(Unauthenticated):
        await verifier.verify(other.stdout.strip())


def test_racing_creators_end_with_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: dev_key(tmp_path), range(16)))
    numbers = {key.private_numbers().private_value for key in keys}
    assert len(numbers) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["dev-key.pem"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--scope", "admin"], "--merchant"),
        (["--merchant", "m1"], "--scope"),
        (["--merchant", "m1", "--scope", "admin", "--ttl", "soon"], "invalid duration"),
        (["--merchant", "m1", "--scope", "admin", "--ttl=-1h"], "must be positive"),
    ],
)
def test_bad_arguments_are_usage_errors(tmp_path: Path, args: list[str], words: str) -> None:
    done = caixa("token", *args, cwd=tmp_path)
    assert done.returncode == 2 and words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
