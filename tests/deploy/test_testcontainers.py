"""GT_INFRA=testcontainers: real Apache Kafka and PostgreSQL in containers for the same fixtures,
where a Docker engine exists. Where none answers, starting the stack fails at once and says what
to do; it never hangs and never quietly falls back to the embedded stack."""

from __future__ import annotations

import time

import pytest

from eventcore.embedded import EmbeddedStack, StackStartError
from eventcore.settings import CoreSettings


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point docker clients at a socket nothing listens on (true here; forced elsewhere)."""
    monkeypatch.setenv("GT_INFRA", "testcontainers")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/golden-thread/docker.sock")
    monkeypatch.delenv("GT_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("GT_DATABASE_URL", raising=False)


async def test_without_a_docker_engine_the_stack_fails_with_a_clear_message(
    no_engine: None,
) -> None:
    started = time.monotonic()
    with pytest.raises(StackStartError) as failed:
        async with EmbeddedStack(CoreSettings()):
            pytest.fail("a stack started without any Docker engine")
    message = str(failed.value)
    assert "GT_INFRA=testcontainers needs a running Docker engine, and none answered" in message
    assert "Unset GT_INFRA to use the embedded stack instead." in message
    assert time.monotonic() - started < 30, "it failed fast"


async def test_an_unknown_infra_choice_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GT_INFRA", "kubernetes")
    with pytest.raises(StackStartError, match="GT_INFRA must be 'embedded' or 'testcontainers'"):
        async with EmbeddedStack(CoreSettings()):
            pytest.fail("started with an unknown GT_INFRA")

