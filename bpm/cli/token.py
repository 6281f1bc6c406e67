"""``bpm token``: mint a JWT for a test user, or make a new API key, for a service with BPM_AUTH on.

For local testing only: a real deployment gets its tokens from its identity provider.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
import jwt


def _names(values: Iterable[str]) -> list[str]:
    """``--groups a,b --groups c`` -> ``[a, b, c]``."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def token_claims(
    user: str,
    *,
    groups: list[str] | None = None,
    roles: list[str] | None = None,
    minutes: int = 60,
    issuer: str = "",
    audience: str = "",
    extra: dict[str, Any] | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """The claim set of a test token (groups/roles only when given: else the identity store decides)."""
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {"sub": user, "iat": issued, "exp": issued + minutes * 60}
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    if groups is not None:
        claims["groups"] = groups
    if roles is not None:
        claims["roles"] = roles
    claims.update(extra or {})
    return claims


def api_key(name: str) -> tuple[str, str]:
    """A new random key and its ``BPM_API_KEYS`` entry (``name:sha256hex``)."""
    key = secrets.token_urlsafe(32)
    return key, f"{name}:{hashlib.sha256(key.encode()).hexdigest()}"


@click.group()
def token() -> None:
    """Test credentials: `bpm token jwt USER ...` or `bpm token api-key NAME`."""


@token.command(name="jwt")
@click.argument("user")
@click.option(
    "--groups", multiple=True, is_flag=False, flag_value="", help="the groups claim, comma-separated or repeated"
)
@click.option(
    "--roles", multiple=True, is_flag=False, flag_value="", help="the roles claim (add 'admin' for an administrator)"
)
@click.option("--minutes", type=click.IntRange(1, 60 * 24 * 365), default=60, show_default=True, help="lifetime")
@click.option("--issuer", default=lambda: os.environ.get("BPM_JWT_ISSUER", ""), show_default="$BPM_JWT_ISSUER")
@click.option(
    "--audience",
    default=lambda: os.environ.get("BPM_JWT_AUDIENCE", "").split(",")[0].strip(),
    show_default="first of $BPM_JWT_AUDIENCE",
)
@click.option("--secret", default=lambda: os.environ.get("BPM_JWT_SECRET", ""), show_default="$BPM_JWT_SECRET")
@click.option("--private-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM private key")
@click.option("--algorithm", help="HS256 with a secret (default); RS256 or ES256 with a private key")
@click.option("--claim", "claims", multiple=True, metavar="NAME=JSON", help="any other claim")
def jwt_command(
    user: str,
    groups: tuple[str, ...],
    roles: tuple[str, ...],
    minutes: int,
    issuer: str,
    audience: str,
    secret: str,
    private_key: Path | None,
    algorithm: str | None,
    claims: tuple[str, ...],
) -> None:
    """Print a signed JWT for USER (HS256 with $BPM_JWT_SECRET, or RS256/ES256 with --private-key)."""
    extra: dict[str, Any] = {}
    for item in claims:
        name, _, value = item.partition("=")
        try:
            extra[name] = json.loads(value)
        except ValueError as exc:
            raise click.BadParameter(f"{item!r}: the value is not JSON ({exc})", param_hint="--claim") from exc
    payload = token_claims(
        user,
        groups=_names(groups) if groups else None,
        roles=_names(roles) if roles else None,
        minutes=minutes,
        issuer=issuer,
        audience=audience,
        extra=extra,
    )
    if private_key is not None:
        key: Any = private_key.read_bytes()
        algorithm = algorithm or "RS256"
    elif secret:
        key, algorithm = secret, algorithm or "HS256"
    else:
        raise click.UsageError("set BPM_JWT_SECRET (or pass --secret or --private-key)")
    click.echo(jwt.encode(payload, key, algorithm=algorithm))


@token.command(name="api-key")
@click.argument("name")
def api_key_command(name: str) -> None:
    """Make a random API key for NAME: prints the key and its BPM_API_KEYS entry."""
    key, entry = api_key(name)
    click.echo(f"key (give to the caller): {key}")
    click.echo(f"BPM_API_KEYS entry:       {entry}")
