"""`caixa token`: JWTs signed with the local dev key, for `make run`'s stack.

The key is an EC P-256 key in `<stack dir>/auth/dev-key.pem`, created on first
use by whichever comes first, this command or `make run`; both use the same
file, so a token minted before the stack starts works after, and the reverse.
The services verify tokens with the key's public half (`jwks.json`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

STACK_DIR_ENV = "CAIXA_STACK_DIR"
DEV_ISSUER = "caixa-dev"
DEV_AUDIENCE = "caixa"
KEY_FILE = "dev-key.pem"
JWKS_FILE = "jwks.json"


def stack_dir(start: Path | None = None) -> Path:
    """`$CAIXA_STACK_DIR`, else the nearest `.devstack` here or above, else
    `./.devstack`: where `make run` keeps its state."""
    if os.environ.get(STACK_DIR_ENV):
        return Path(os.environ[STACK_DIR_ENV])
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".devstack").is_dir():
            return folder / ".devstack"
    return here / ".devstack"


def write_private(path: Path, content: str | bytes) -> None:
    """`content` in a new file only its owner can read, from the first byte;
    replaces `path` atomically (through a draft of a unique name)."""
    data = content.encode() if isinstance(content, str) else content
    draft = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    draft.replace(path)


def dev_key(auth_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The dev key, created if missing. Two processes creating it at once both
    end up with the one that was linked first."""
    path = auth_dir / KEY_FILE
    if not path.exists():
        auth_dir.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        draft = auth_dir / f".{KEY_FILE}.{os.getpid()}.{uuid.uuid4().hex}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        try:
            os.link(draft, path)  # atomic, and never replaces a key already there
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return loaded


def _b64(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode()


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    jwk = {"crv": "P-256", "kty": "EC", "x": _b64(numbers.x), "y": _b64(numbers.y)}
    # RFC 7638 thumbprint: the kid is derived from the key, so every reader agrees.
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**jwk, "kid": kid, "alg": "ES256", "use": "sig"}


def write_jwks(auth_dir: Path) -> Path:
    """The services' view of the dev key: its public half as a JWKS file."""
    path = auth_dir / JWKS_FILE
    draft = auth_dir / f".{JWKS_FILE}.{os.getpid()}"
    draft.write_text(json.dumps({"keys": [public_jwk(dev_key(auth_dir))]}, indent=2) + "\n")
    draft.replace(path)
    return path


def mint(
    key: ec.EllipticCurvePrivateKey,
    *,
    subject: str,
    merchants: Sequence[str],
    scopes: Sequence[str],
    ttl_seconds: float,
    issuer: str = DEV_ISSUER,
    audience: str = DEV_AUDIENCE,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "exp": now + int(ttl_seconds),
        "merchants": list(merchants),
        "scope": " ".join(scopes),
    }
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": public_jwk(key)["kid"]})


def dev_token(merchants: Sequence[str], scope: str, ttl_seconds: float, subject: str) -> str:
    """`caixa token`: a token of the local stack's dev key."""
    return mint(
        dev_key(stack_dir() / "auth"),
        subject=subject,
        merchants=merchants,
        scopes=scope.split(),
        ttl_seconds=ttl_seconds,
    )
