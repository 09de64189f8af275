"""Bearer tokens: JWTs verified with PyJWT against the keys in settings, and minted for tests,
the demo, the `golden-thread token` command and service-to-service calls.

A token says who (`sub`, a pseudonymous id) acts in which role (`role`, an `ActorRole` value),
for whom (`aud`), from which issuer (`iss`) and until when (`exp`, required). Problems name what
is wrong with the token and never repeat it.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from pydantic import SecretStr

from contracts import ActorRole
from contracts.fields import PSEUDONYMOUS_ID_PATTERN
from eventcore.settings import CoreSettings

MIN_SECRET_CHARS = 32
#: Verified tokens remembered per verifier (a listener's session sends the same one each time).
CACHE_SIZE = 4096
#: Longer tokens are verified every time rather than remembered.
CACHE_MAX_TOKEN_CHARS = 4096
DEFAULT_ISSUER = DEFAULT_AUDIENCE = "golden-thread"
_SUBJECT = re.compile(PSEUDONYMOUS_ID_PATTERN)


@dataclass(frozen=True)
class Principal:
    """The verified caller: a pseudonymous subject acting in one role."""

    subject: str
    role: ActorRole

    def must_be(self, field: str, actor_id: str) -> None:
        """A body's actor id must be the caller's own, unless an admin acts for someone."""
        if self.role is not ActorRole.ADMIN and actor_id != self.subject:
            raise ActorMismatch(field)


class ActorMismatch(Exception):
    def __init__(self, field: str) -> None:
        super().__init__(f"{field} must be the token's subject")
        self.field = field


class TokenRejected(Exception):
    """The token cannot be trusted; the message says why without quoting it."""


class AuthNotConfigured(RuntimeError):
    pass


class TokenVerifier:
    """Verifies bearer tokens, remembering the last `cache_size` it accepted (keyed by the whole
    token string) until their `exp`: a remembered token is answered without parsing or checking
    its signature again, never after it expires, and a refused token is never remembered."""

    def __init__(self, *, secret: str | None = None, public_key: str | None = None,
                 issuer: str = DEFAULT_ISSUER, audience: str = DEFAULT_AUDIENCE,
                 leeway_s: int = 30, cache_size: int = CACHE_SIZE,
                 clock: Callable[[], float] = time.time) -> None:
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_size, self._clock = cache_size, clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        if secret is not None:
            if len(secret) < MIN_SECRET_CHARS:
                raise AuthNotConfigured(
                    f"GT_AUTH_JWT_SECRET: too short; use at least {MIN_SECRET_CHARS} random characters")
            self._keys["HS256"] = secret
        if public_key is not None:
            self._keys.update(_public_key(public_key))
        if not self._keys:
            raise AuthNotConfigured(
                "GT_AUTH_JWT_SECRET (HS256) or GT_AUTH_JWT_PUBLIC_KEY (RS256/ES256 PEM): neither "
                "is set, so bearer tokens cannot be verified and the service will not start")
        self.issuer, self.audience, self.leeway_s = issuer, audience, leeway_s

    @classmethod
    def from_settings(cls, settings: CoreSettings) -> TokenVerifier:
        secret = settings.auth_jwt_secret
        return cls(secret=secret.get_secret_value() if secret else None,
                   public_key=settings.auth_jwt_public_key, issuer=settings.auth_jwt_issuer,
                   audience=settings.auth_jwt_audience, leeway_s=settings.auth_jwt_leeway_s)

    def verify(self, token: str) -> Principal:
        now = self._clock()
        with self._lock:
            known = self._cache.get(token)
            if known is not None:
                if now < known[1]:
                    self._cache.move_to_end(token)
                    return known[0]
                del self._cache[token]
        principal, expires = self._verify(token)
        if now < expires and self._cache_size > 0 and len(token) <= CACHE_MAX_TOKEN_CHARS:
            with self._lock:
                self._cache[token] = (principal, expires)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        """The principal and the token's `exp` (seconds since the epoch), or TokenRejected."""
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise TokenRejected("the bearer token is not a JWT") from None
        key = self._keys.get(str(algorithm))
        if key is None:
            raise TokenRejected("the token's signing algorithm is not accepted here")
        try:
            claims = jwt.decode(
                token, key, algorithms=[str(algorithm)], audience=self.audience,
                issuer=self.issuer, leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.PyJWTError as exc:
            raise TokenRejected(_reason(exc)) from None
        # PyJWT has checked that `exp` is a number; remembered no later than it (the leeway is
        # for clock skew at the first check, not for a cache to stretch).
        return _principal(claims), float(claims["exp"])


def _reason(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "the token has expired"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the token's signature does not verify"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "the token is meant for another audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "the token comes from another issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token has no {exc.claim} claim"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "the token is not valid yet"
    return "the token is not valid"


def _principal(claims: dict[str, Any]) -> Principal:
    subject, role = claims.get("sub"), claims.get("role")
    if not isinstance(subject, str) or not _SUBJECT.match(subject):
        raise TokenRejected("the token's sub must be a pseudonymous id")
    if not isinstance(role, str) or role not in ActorRole._value2member_map_:
        raise TokenRejected("the token's role is not a known role")
    return Principal(subject, ActorRole(role))


def _public_key(pem: str) -> dict[str, Any]:
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError:
        raise AuthNotConfigured("GT_AUTH_JWT_PUBLIC_KEY: not a PEM public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        return {"RS256": key}
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return {"ES256": key}
    raise AuthNotConfigured("GT_AUTH_JWT_PUBLIC_KEY: only RSA (RS256) and EC P-256 (ES256) keys")


def mint_token(source: CoreSettings | SecretStr | str, role: ActorRole | str, subject: str,
               ttl_s: int = 900, *, issuer: str | None = None, audience: str | None = None) -> str:
    """A signed token for `subject` in `role`, expiring in `ttl_s` seconds (negative: already
    expired, for tests). `source` is settings (their HS256 secret, issuer and audience), an
    HS256 secret, or a PEM private key (RSA: RS256, EC P-256: ES256)."""
    if isinstance(source, CoreSettings):
        if source.auth_jwt_secret is None:
            raise AuthNotConfigured("GT_AUTH_JWT_SECRET: not set; no token can be minted")
        issuer = issuer or source.auth_jwt_issuer
        audience = audience or source.auth_jwt_audience
        source = source.auth_jwt_secret
    key_text = source.get_secret_value() if isinstance(source, SecretStr) else source
    key, algorithm = _signing_key(key_text)
    now = int(time.time())
    claims = {"iss": issuer or DEFAULT_ISSUER, "aud": audience or DEFAULT_AUDIENCE,
              "sub": subject, "role": ActorRole(role).value, "iat": min(now, now + ttl_s),
              "exp": now + ttl_s, "jti": secrets.token_hex(8)}
    return jwt.encode(claims, key, algorithm=algorithm)


def _signing_key(text: str) -> tuple[Any, str]:
    if not text.lstrip().startswith("-----BEGIN"):
        return text, "HS256"
    key = load_pem_private_key(text.encode(), password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key, "ES256"
    raise ValueError("only RSA and EC P-256 private keys can sign tokens")


class ServiceToken:
    """A service's own machine token (role `system`, `sub` = its name), minted from the shared
    secret and renewed a minute before it expires. Call it for the current token."""

    def __init__(self, settings: CoreSettings, service: str, ttl_s: int = 300) -> None:
        self._settings, self._service, self._ttl_s = settings, service, ttl_s
        self._token, self._renew_at = "", 0.0

    def __call__(self) -> str:
        if time.monotonic() >= self._renew_at:
            self._token = mint_token(self._settings, ActorRole.SYSTEM, self._service, self._ttl_s)
            self._renew_at = time.monotonic() + max(1, self._ttl_s - 60)
        return self._token
