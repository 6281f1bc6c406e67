"""Helpers for the authentication tests: token minting, hand-made tokens, API keys, key files."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bpm.api.auth import hash_api_key

SECRET = "test-only-hmac-secret-" + "0123456789abcdef" * 3
ISSUER = "https://idp.example.test/realms/bpm"
AUDIENCE = "bpm-runtime"
CRM_KEY = "crm-3b1f2c9a4d5e6f708192a3b4c5d6e7f8"
OPS_KEY = "ops-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
AUTH_CONFIG: dict[str, Any] = {
    "BPM_AUTH": "jwt,apikey",
    "BPM_JWT_SECRET": SECRET,
    "BPM_JWT_ISSUER": ISSUER,
    "BPM_JWT_AUDIENCE": AUDIENCE,
    "BPM_API_KEYS": f"crm:{hash_api_key(CRM_KEY)}, ops:{hash_api_key(OPS_KEY)}",
    "BPM_API_KEY_ADMINS": "ops",
}
_UNSET: Any = object()


def claims(user: str | None = "alice", *, groups: Any = _UNSET, roles: Any = _UNSET, **extra: Any) -> dict[str, Any]:
    """A valid claim set: issuer, audience, five minutes of life; groups/roles only when given."""
    now = int(time.time())
    payload: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    if user is not None:
        payload["sub"] = user
    if groups is not _UNSET:
        payload["groups"] = groups
    if roles is not _UNSET:
        payload["roles"] = roles
    payload.update(extra)
    return {k: v for k, v in payload.items() if v is not None}


def mint(user: str | None = "alice", *, key: Any = SECRET, algorithm: str = "HS256", **kwargs: Any) -> str:
    return jwt.encode(claims(user, **kwargs), key, algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def as_user(user: str = "alice", **kwargs: Any) -> dict[str, str]:
    """Headers of a JWT caller."""
    return bearer(mint(user, **kwargs))


def as_admin(user: str = "root") -> dict[str, str]:
    return as_user(user, roles=["admin"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], hmac_key: bytes | None = None) -> str:
    """A token built without PyJWT: unsigned (``hmac_key`` None) or HMAC-SHA256 with any bytes."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if hmac_key is None:
        return signing_input + "."
    return signing_input + "." + _b64(hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest())


def rsa_key_pair(folder: Path) -> tuple[rsa.RSAPrivateKey, Path]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private, _write_public(private.public_key(), folder / "rsa.pem")


def ec_key_pair(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, Path]:
    private = ec.generate_private_key(ec.SECP256R1())
    return private, _write_public(private.public_key(), folder / "ec.pem")


def _write_public(public: Any, path: Path) -> Path:
    path.write_bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path
