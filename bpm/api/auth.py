"""Who is calling: authentication by bearer JWT or static API key (``BPM_AUTH``).

``BPM_AUTH`` is ``off`` (the default: every request is the anonymous caller and
``?user=`` says who acts, as before), ``jwt``, ``apikey`` or both (``jwt,apikey``).
When it is on, every request except the public endpoints (health, the OpenAPI
document, the docs page) and CORS preflights must carry credentials:

- ``Authorization: Bearer <JWT>``, verified with PyJWT: the signature (HS256 with
  ``BPM_JWT_SECRET``, or RS*/PS*/ES*/EdDSA with the public key in
  ``BPM_JWT_PUBLIC_KEY_FILE``), only the algorithms of ``BPM_JWT_ALGORITHMS``
  (never ``none``), and ``exp`` (required), ``nbf``, ``iss`` and ``aud`` with
  ``BPM_JWT_LEEWAY`` seconds of clock skew. The user, groups and roles come from
  the claims ``BPM_JWT_USER_CLAIM``/``_GROUPS_CLAIM``/``_ROLES_CLAIM`` (a dotted
  path reaches nested claims, e.g. ``realm_access.roles``);
- ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``: a static key whose
  SHA-256 is listed in ``BPM_API_KEYS`` (``name:hexdigest,...``); such a trusted
  backend caller acts on behalf of ``?user=``.

Anything else is a 401 ``UNAUTHORIZED`` with a ``WWW-Authenticate: Bearer``
challenge. What an authenticated caller may do is decided in :mod:`bpm.api.policy`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from flask import Flask, g, request

from bpm.api.flaskapp import app_context
from bpm.errors import Unauthorized
from bpm.records import Identity

AUTH_MODES = ("jwt", "apikey")
#: endpoints anyone may call, with or without credentials
PUBLIC_ENDPOINTS = frozenset(
    {"health.Health", "api-docs.openapi_json", "api-docs.openapi_swagger_ui", "pages.tasklist", "pages.static"}
)
PUBLIC_ENDPOINTS |= {"health.Ready", "metrics"}  # probes and scrapers carry no credentials
REALM = "bpm-runtime"
MAX_CREDENTIAL_LENGTH = 8192
MAX_NAMES_IN_CLAIM = 500
MAX_NAME_LENGTH = 200
MIN_HMAC_SECRET_BYTES = 32
_BEARER = re.compile(r"Bearer[ \t]+([A-Za-z0-9\-._~+/]+=*)[ \t]*", re.IGNORECASE)
_API_KEY = re.compile(r"[\x21-\x7e]{1,512}")
_API_KEY_ENTRY = re.compile(r"([A-Za-z0-9._-]{1,64}):([0-9a-fA-F]{64})")
_HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
#: public key type -> (the algorithms it may verify, the default)
_KEY_ALGORITHMS: tuple[tuple[type, frozenset[str], str], ...] = (
    (rsa.RSAPublicKey, frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}), "RS256"),
    (ec.EllipticCurvePublicKey, frozenset({"ES256", "ES384", "ES512", "ES256K"}), "ES256"),
    (ed25519.Ed25519PublicKey, frozenset({"EdDSA"}), "EdDSA"),
    (ed448.Ed448PublicKey, frozenset({"EdDSA"}), "EdDSA"),
)
_EC_DEFAULTS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512", "secp256k1": "ES256K"}

#: PyJWT's failures, as the one sentence the client (and the challenge) gets
_JWT_FAILURES: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired."),
    (jwt.ImmatureSignatureError, "The token is not valid yet."),
    (jwt.InvalidIssuerError, "The token's issuer is not accepted."),
    (jwt.InvalidAudienceError, "The token's audience is not accepted."),
    (jwt.InvalidAlgorithmError, "The token's signing algorithm is not accepted."),
    (jwt.InvalidSignatureError, "The token's signature is not valid."),
    (jwt.MissingRequiredClaimError, "The token lacks a required claim (exp, iss or aud)."),
    (jwt.DecodeError, "The token is malformed."),
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of one request.

    ``kind`` is ``anonymous`` (authentication off), ``jwt`` or ``apikey``; ``name`` the
    JWT user or the API key's name. ``groups``/``roles`` are the token's claims, or
    None when the token carries neither claim (the identity store then decides).
    """

    kind: str
    name: str | None = None
    groups: frozenset[str] | None = None
    roles: frozenset[str] | None = None
    admin: bool = False

    @property
    def actor(self) -> str | None:
        """Who the audit trail names: the JWT user, or ``apikey:<name>``."""
        if self.kind == "apikey":
            return f"apikey:{self.name}"
        return self.name

    def identity(self) -> Identity | None:
        """A JWT user's groups and roles from the token; None: ask the identity store."""
        if self.kind != "jwt" or self.name is None or (self.groups is None and self.roles is None):
            return None
        return Identity(self.name, self.groups or frozenset(), self.roles or frozenset())


ANONYMOUS = Caller("anonymous", admin=True)


# -- configuration ----------------------------------------------------------------------


def _names(value: Any) -> list[str]:
    """A comma-separated configuration value as a list of non-empty names."""
    return [part.strip() for part in str(value or "").split(",") if part.strip()]


def auth_modes(value: Any) -> frozenset[str]:
    """``BPM_AUTH``: ``off``/empty, or a comma-separated subset of :data:`AUTH_MODES`."""
    modes = {m.lower() for m in _names(value)} - {"off", "none", "false", "0"}
    unknown = sorted(modes - set(AUTH_MODES))
    if unknown:
        raise ValueError(f"BPM_AUTH: unknown mode(s) {', '.join(unknown)} (known: off, {', '.join(AUTH_MODES)})")
    return frozenset(modes)


@dataclass(frozen=True, slots=True)
class JwtVerifier:
    """Checks bearer JWTs; built once from the configuration (errors stop start-up)."""

    key: Any
    algorithms: tuple[str, ...]
    issuer: str | None
    audience: tuple[str, ...]
    leeway: float
    user_claim: str
    groups_claim: str
    roles_claim: str
    admin_role: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> JwtVerifier:
        key, allowed, default = _verification_key(config)
        algorithms = tuple(_names(config.get("BPM_JWT_ALGORITHMS"))) or (default,)
        refused = [a for a in algorithms if a not in allowed]
        if refused:
            usable = ", ".join(sorted(allowed))
            raise ValueError(f"BPM_JWT_ALGORITHMS: {', '.join(refused)} cannot be used with this key (use {usable})")
        return cls(
            key=key,
            algorithms=algorithms,
            issuer=str(config.get("BPM_JWT_ISSUER") or "").strip() or None,
            audience=tuple(_names(config.get("BPM_JWT_AUDIENCE"))),
            leeway=float(config.get("BPM_JWT_LEEWAY") or 0),
            user_claim=str(config.get("BPM_JWT_USER_CLAIM") or "sub"),
            groups_claim=str(config.get("BPM_JWT_GROUPS_CLAIM") or "groups"),
            roles_claim=str(config.get("BPM_JWT_ROLES_CLAIM") or "roles"),
            admin_role=str(config.get("BPM_ADMIN_ROLE") or "admin"),
        )

    def verify(self, token: str) -> Caller:
        """The caller a token names. Raises Unauthorized for any token that does not verify."""
        required = ["exp", *(["iss"] if self.issuer else []), *(["aud"] if self.audience else [])]
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=list(self.algorithms),
                issuer=self.issuer,
                audience=list(self.audience) or None,
                leeway=self.leeway,
                options={"require": required},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise Unauthorized(_jwt_failure(exc)) from None
        user = _claim(claims, self.user_claim)
        if not isinstance(user, str) or not _is_name(user.strip()):
            raise Unauthorized(f"The token has no usable user claim '{_plain(self.user_claim)}'.")
        groups = _claim_names(claims, self.groups_claim)
        roles = _claim_names(claims, self.roles_claim)
        return Caller("jwt", user.strip(), groups, roles, admin=self.admin_role in (roles or ()))


def _verification_key(config: Mapping[str, Any]) -> tuple[Any, frozenset[str], str]:
    """(the key, the algorithms it may verify, the default algorithm)."""
    secret = str(config.get("BPM_JWT_SECRET") or "")
    key_file = str(config.get("BPM_JWT_PUBLIC_KEY_FILE") or "")
    if bool(secret) == bool(key_file):
        raise ValueError("BPM_AUTH=jwt needs exactly one of BPM_JWT_SECRET and BPM_JWT_PUBLIC_KEY_FILE")
    if secret:
        if len(secret.encode()) < MIN_HMAC_SECRET_BYTES:
            raise ValueError(f"BPM_JWT_SECRET must be at least {MIN_HMAC_SECRET_BYTES} bytes long")
        return secret.encode(), _HMAC_ALGORITHMS, "HS256"
    try:
        key = serialization.load_pem_public_key(Path(key_file).read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"BPM_JWT_PUBLIC_KEY_FILE={key_file!r} is not a readable PEM public key: {exc}") from exc
    for kind, allowed, default in _KEY_ALGORITHMS:
        if isinstance(key, kind):
            if isinstance(key, ec.EllipticCurvePublicKey):
                default = _EC_DEFAULTS.get(key.curve.name, default)
            return key, allowed, default
    raise ValueError(f"BPM_JWT_PUBLIC_KEY_FILE={key_file!r}: unsupported key type {type(key).__name__}")


def _jwt_failure(exc: Exception) -> str:
    for kind, sentence in _JWT_FAILURES:
        if isinstance(exc, kind):
            return sentence
    return "The token is not valid."


_ABSENT = object()


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by dotted path into nested objects; :data:`_ABSENT` when missing."""
    if path in claims:
        return claims[path]
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def _claim_names(claims: Mapping[str, Any], path: str) -> frozenset[str] | None:
    """A groups/roles claim: a list of names, or one string of comma/space-separated names."""
    value = _claim(claims, path)
    if value is _ABSENT:
        return None
    if isinstance(value, str):
        value = re.split(r"[\s,]+", value)
    if not isinstance(value, list) or len(value) > MAX_NAMES_IN_CLAIM:
        raise Unauthorized(f"The token's claim '{_plain(path)}' is not a list of names.")
    names = [v.strip() for v in value if isinstance(v, str)]
    if len(names) != len(value) or not all(_is_name(n) for n in names if n):
        raise Unauthorized(f"The token's claim '{_plain(path)}' is not a list of names.")
    return frozenset(n for n in names if n)


def _is_name(text: str) -> bool:
    return 0 < len(text) <= MAX_NAME_LENGTH and text.isprintable()


def _plain(text: str) -> str:
    """Configuration text safe to put in a message and a header (printable ASCII, no quotes)."""
    return "".join(c for c in text if 32 <= ord(c) < 127 and c not in '"\\')[:80]


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """The static API keys: names and SHA-256 digests (the keys themselves are never stored)."""

    digests: tuple[tuple[str, bytes], ...]
    admins: frozenset[str]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ApiKeys:
        digests: dict[str, bytes] = {}
        for entry in _names(config.get("BPM_API_KEYS")):
            match = _API_KEY_ENTRY.fullmatch(entry)
            if not match:
                raise ValueError("BPM_API_KEYS: each entry must be <name>:<sha256 hex digest of the key>")
            if match[1] in digests:
                raise ValueError(f"BPM_API_KEYS: the name {match[1]!r} appears twice")
            digests[match[1]] = bytes.fromhex(match[2])
        if not digests:
            raise ValueError("BPM_AUTH=apikey needs BPM_API_KEYS (name:sha256hex, comma-separated)")
        admins = frozenset(_names(config.get("BPM_API_KEY_ADMINS")))
        unknown = sorted(admins - set(digests))
        if unknown:
            raise ValueError(f"BPM_API_KEY_ADMINS names unknown keys: {', '.join(unknown)}")
        return cls(tuple(digests.items()), admins)

    def find(self, key: str) -> Caller | None:
        """The caller a presented key belongs to, or None. Compares every digest in constant time."""
        digest = hashlib.sha256(key.encode()).digest()
        found = None
        for name, expected in self.digests:
            if hmac.compare_digest(digest, expected):
                found = name
        return None if found is None else Caller("apikey", found, admin=found in self.admins)


def hash_api_key(key: str) -> str:
    """The hex digest to put in ``BPM_API_KEYS`` for a key."""
    return hashlib.sha256(key.encode()).hexdigest()


# -- per request --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Authenticator:
    """Turns a request's credentials into a :class:`Caller` (or a 401)."""

    jwt: JwtVerifier | None = None
    api_keys: ApiKeys | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Authenticator:
        modes = auth_modes(config.get("BPM_AUTH"))
        return cls(
            JwtVerifier.from_config(config) if "jwt" in modes else None,
            ApiKeys.from_config(config) if "apikey" in modes else None,
        )

    @property
    def enabled(self) -> bool:
        return self.jwt is not None or self.api_keys is not None

    def authenticate(self, authorization: str | None, api_key: str | None) -> Caller:
        """The caller of a request with these headers. Raises Unauthorized."""
        if not self.enabled:
            return ANONYMOUS
        if api_key is not None:
            return self._by_key(api_key)
        if not authorization:
            raise Unauthorized("Authentication is required: send 'Authorization: Bearer <token>'.", reason=None)
        match = _BEARER.fullmatch(authorization) if len(authorization) <= MAX_CREDENTIAL_LENGTH else None
        if match is None:
            raise Unauthorized("The Authorization header must be 'Bearer <token>'.", reason="invalid_request")
        token = match[1]
        caller = self.api_keys.find(token) if self.api_keys is not None else None
        if caller is not None:
            return caller
        if self.jwt is not None and token.count(".") == 2:
            return self.jwt.verify(token)
        raise Unauthorized("The bearer token is not valid.")

    def _by_key(self, key: str) -> Caller:
        caller = self.api_keys.find(key) if self.api_keys is not None and _API_KEY.fullmatch(key) else None
        if caller is None:
            raise Unauthorized("The API key is not valid.")
        return caller


def challenge(error: Unauthorized) -> str:
    """The ``WWW-Authenticate`` value of a 401 (RFC 6750)."""
    value = f'Bearer realm="{REALM}"'
    if error.reason:
        value += f', error="{error.reason}", error_description="{_plain(error.message)}"'
    return value


def init_auth(app: Flask) -> Authenticator:
    """Build the authenticator from the configuration (ValueError stops start-up) and hook it in."""
    authenticator = Authenticator.from_config(app.config)
    app.extensions["bpm_auth"] = authenticator
    app.before_request(authenticate_request)
    return authenticator


def authenticate_request() -> None:
    """Before every request: who is calling (public endpoints and CORS preflights need nobody)."""
    app_ctx = app_context()  # the app and ``g`` without their proxies
    authenticator: Authenticator = app_ctx.app.extensions["bpm_auth"]
    if not authenticator.enabled:
        app_ctx.g.caller = ANONYMOUS
        return
    if request.method == "OPTIONS" or request.endpoint in PUBLIC_ENDPOINTS:
        return
    g.caller = authenticator.authenticate(request.headers.get("Authorization"), request.headers.get("X-API-Key"))


def current_caller() -> Caller:
    """This request's caller. Raises Unauthorized where none was authenticated."""
    caller: Caller | None = app_context().g.get("caller")
    if caller is None:
        raise Unauthorized("Authentication is required: send 'Authorization: Bearer <token>'.", reason=None)
    return caller
