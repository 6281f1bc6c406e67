"""Mint a JWT for a test user, or make a new API key, for a service running with BPM_AUTH on.

Tokens (HS256 with the shared secret, or RS256/ES256 with a private key)::

    BPM_JWT_SECRET=... BPM_JWT_ISSUER=https://idp.example BPM_JWT_AUDIENCE=bpm-runtime \\
        python3 tools/mint_token.py token alice --groups facilities --roles approver
    python3 tools/mint_token.py token root --roles admin --private-key idp.pem --algorithm RS256

API keys (prints the key to hand to the caller, and the ``BPM_API_KEYS`` entry to configure)::

    python3 tools/mint_token.py api-key crm

The claims written are the default ones (``sub``, ``groups``, ``roles``); use
``--claim name=value`` (JSON value) for anything else. For local testing only: a
real deployment gets its tokens from its identity provider.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt


def token_claims(args: argparse.Namespace, now: int | None = None) -> dict[str, Any]:
    """The claim set of a test token."""
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {"sub": args.user, "iat": issued, "exp": issued + args.minutes * 60}
    if args.issuer:
        claims["iss"] = args.issuer
    if args.audience:
        claims["aud"] = args.audience
    if args.groups is not None:
        claims["groups"] = args.groups
    if args.roles is not None:
        claims["roles"] = args.roles
    for item in args.claim:
        name, _, value = item.partition("=")
        claims[name] = json.loads(value)
    return claims


def mint(args: argparse.Namespace) -> str:
    """A signed token: with ``--private-key`` (PEM) if given, else with the shared secret."""
    if args.private_key:
        key: Any = Path(args.private_key).read_bytes()
        algorithm = args.algorithm or "RS256"
    else:
        if not args.secret:
            raise SystemExit("set BPM_JWT_SECRET (or pass --secret / --private-key)")
        key, algorithm = args.secret, args.algorithm or "HS256"
    return jwt.encode(token_claims(args), key, algorithm=algorithm)


def api_key(name: str) -> tuple[str, str]:
    """A new random key and its ``BPM_API_KEYS`` entry (``name:sha256hex``)."""
    key = secrets.token_urlsafe(32)
    return key, f"{name}:{hashlib.sha256(key.encode()).hexdigest()}"


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = main.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="mint a JWT for a test user")
    token.add_argument("user", help="the sub claim")
    token.add_argument("--groups", nargs="*", help="the groups claim (omitted: the identity store decides)")
    token.add_argument("--roles", nargs="*", help="the roles claim (add 'admin' for an administrator)")
    token.add_argument("--minutes", type=int, default=60, help="lifetime (default 60)")
    token.add_argument("--issuer", default=os.environ.get("BPM_JWT_ISSUER", ""), help="default $BPM_JWT_ISSUER")
    token.add_argument(
        "--audience", default=os.environ.get("BPM_JWT_AUDIENCE", "").split(",")[0], help="default $BPM_JWT_AUDIENCE"
    )
    token.add_argument("--secret", default=os.environ.get("BPM_JWT_SECRET", ""), help="default $BPM_JWT_SECRET")
    token.add_argument("--private-key", help="PEM private key file (RS256/ES256 instead of HS256)")
    token.add_argument("--algorithm", help="HS256 (secret), RS256 or ES256 (private key)")
    token.add_argument("--claim", action="append", default=[], metavar="NAME=JSON", help="any other claim")
    key = commands.add_parser("api-key", help="make a random API key and its BPM_API_KEYS entry")
    key.add_argument("name", help="the key's name (shown as apikey:<name> in the audit trail)")
    return main


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "token":
        print(mint(args))
    else:
        key, entry = api_key(args.name)
        print(f"key (give to the caller): {key}")
        print(f"BPM_API_KEYS entry:       {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
