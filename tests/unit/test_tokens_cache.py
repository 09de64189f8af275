"""The verifier's memory of accepted tokens: faster, never more permissive."""

from __future__ import annotations

import secrets
import time

import jwt
import pytest

from contracts import ActorRole
from eventcore.tokens import Principal, TokenRejected, TokenVerifier, mint_token

SECRET = secrets.token_urlsafe(32)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _counting(verifier: TokenVerifier) -> list[str]:
    """Record each token the verifier checks in full (not answered from memory)."""
    checked: list[str] = []
    full = verifier._verify

    def counted(token: str) -> tuple[Principal, float]:
        checked.append(token)
        return full(token)

    verifier._verify = counted  # type: ignore[method-assign]
    return checked


def test_a_token_accepted_once_is_answered_from_memory() -> None:
    verifier = TokenVerifier(secret=SECRET)
    checked = _counting(verifier)
    token = mint_token(SECRET, ActorRole.COMMUNITY_LISTENER, "listener-1")
    for _ in range(3):
        assert verifier.verify(token) == Principal("listener-1", ActorRole.COMMUNITY_LISTENER)
    assert checked == [token]


def test_an_expired_token_is_refused_even_when_it_was_remembered() -> None:
    verifier = TokenVerifier(secret=SECRET, leeway_s=0)
    token = mint_token(SECRET, ActorRole.ADMIN, "admin-1", ttl_s=1)
    assert verifier.verify(token).role is ActorRole.ADMIN
    assert verifier.verify(token).role is ActorRole.ADMIN  # from memory
    time.sleep(max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"]
                   - time.time()) + 0.05)
    with pytest.raises(TokenRejected, match="expired"):
        verifier.verify(token)


def test_memory_answers_only_until_exp_then_the_full_check_decides() -> None:
    clock = Clock()
    verifier = TokenVerifier(secret=SECRET, leeway_s=30, clock=clock)
    token = mint_token(SECRET, ActorRole.ADMIN, "admin-1", ttl_s=60)
    verifier.verify(token)
    checked = _counting(verifier)
    verifier.verify(token)
    assert checked == []
    clock.now += 61  # past exp: checked in full (where PyJWT's own leeway applies)
    verifier.verify(token)
    assert checked == [token]


def test_a_token_only_valid_within_the_leeway_is_not_remembered() -> None:
    verifier = TokenVerifier(secret=SECRET, leeway_s=30)
    checked = _counting(verifier)
    token = mint_token(SECRET, ActorRole.AUDITOR, "auditor-1", ttl_s=-5)  # expired, within leeway
    verifier.verify(token)
    verifier.verify(token)
    assert checked == [token, token]


def test_different_tokens_are_never_confused() -> None:
    verifier = TokenVerifier(secret=SECRET)
    listener = mint_token(SECRET, ActorRole.COMMUNITY_LISTENER, "listener-1")
    admin = mint_token(SECRET, ActorRole.ADMIN, "admin-1")
    assert verifier.verify(listener) == Principal("listener-1", ActorRole.COMMUNITY_LISTENER)
    assert verifier.verify(admin) == Principal("admin-1", ActorRole.ADMIN)
    assert verifier.verify(listener) == Principal("listener-1", ActorRole.COMMUNITY_LISTENER)


def test_a_remembered_tokens_forgeries_are_still_checked() -> None:
    verifier = TokenVerifier(secret=SECRET)
    token = mint_token(SECRET, ActorRole.COMMUNITY_LISTENER, "listener-1")
    verifier.verify(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "role": "admin"}, "x" * 32, algorithm="HS256")
    with pytest.raises(TokenRejected, match="signature"):
        verifier.verify(forged)
    header, payload, signature = token.split(".")
    with pytest.raises(TokenRejected):
        verifier.verify(f"{header}.{payload}.{signature[:-2]}AA")


def test_refused_tokens_are_not_remembered_and_memory_is_bounded() -> None:
    verifier = TokenVerifier(secret=SECRET, cache_size=2)
    bad = mint_token("y" * 32, ActorRole.ADMIN, "admin-1")
    for _ in range(2):
        with pytest.raises(TokenRejected):
            verifier.verify(bad)
    tokens = [mint_token(SECRET, ActorRole.AUDITOR, f"auditor-{n}") for n in range(3)]
    for token in tokens:
        verifier.verify(token)
    assert list(verifier._cache) == tokens[1:]
    checked = _counting(verifier)
    verifier.verify(tokens[0])  # forgotten: checked in full again
    assert checked == [tokens[0]]
