"""Wiring for the feedback service: done once here, so tests can pass their own fakes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from contracts.topics import TOPIC_BY_TYPE
from eventcore.runtime import ServiceRuntime, Subscription
from eventcore.service_app import service_app
from eventcore.tokens import ServiceToken
from services.feedback.adapters.contacts import ContactReader, HttpContactReader
from services.feedback.adapters.mailer import Mailer, SmtpMailer
from services.feedback.config import CONSUMER, SCHEMA, SOURCE, UPSTREAM_TOPICS, FeedbackSettings
from services.feedback.domain.categories import load_category_names
from services.feedback.domain.glossary import load_glossary
from services.feedback.domain.messages import Wording
from services.feedback.entrypoints.http import FeedbackReads, include_routes
from services.feedback.handlers import Policies
from services.feedback.scheduler import Clock, Scheduler, notification_counter

MIGRATIONS = Path(__file__).parent / "migrations"


def build_runtime(settings: FeedbackSettings) -> ServiceRuntime:
    policies = Policies(notify_from=settings.feedback_notify_from_status,
                        trusted_action_sources=settings.feedback_trusted_action_sources)
    return ServiceRuntime(
        source=SOURCE, schema=SCHEMA, settings=settings, migrations=[MIGRATIONS],
        topics=TOPIC_BY_TYPE,
        subscriptions=[Subscription(CONSUMER, UPSTREAM_TOPICS, policies.handlers(),
                                    policies.batch_handlers())],
    )


def local_today(settings: FeedbackSettings) -> Clock:
    zone = ZoneInfo(settings.feedback_timezone)
    return lambda: datetime.now(UTC).astimezone(zone).date()


def smtp_mailer(settings: FeedbackSettings) -> SmtpMailer:
    password = settings.feedback_smtp_password
    return SmtpMailer(
        host=settings.feedback_smtp_host, port=settings.feedback_smtp_port,
        sender=settings.feedback_smtp_from, starttls=settings.feedback_smtp_starttls,
        username=settings.feedback_smtp_username,
        password=password.get_secret_value() if password else None,
        timeout_s=settings.feedback_smtp_timeout_s,
    )


def intake_contacts(settings: FeedbackSettings) -> HttpContactReader:
    """Intake admits this service as role `system`, subject `feedback`: a token minted here from
    GT_AUTH_JWT_SECRET (short-lived, renewed), or GT_FEEDBACK_INTAKE_TOKEN when given."""
    token: str | Callable[[], str]
    if settings.feedback_intake_token is not None:
        token = settings.feedback_intake_token.get_secret_value()
    elif settings.auth_jwt_secret is not None:
        token = ServiceToken(settings, SOURCE)
    else:
        raise RuntimeError("GT_FEEDBACK_INTAKE_TOKEN: not set, and no GT_AUTH_JWT_SECRET to mint "
                           "one from; contact details cannot be read")
    return HttpContactReader(settings.feedback_intake_url, token,
                             timeout_s=settings.feedback_intake_timeout_s)


def build_app(
    settings: FeedbackSettings,
    runtime: ServiceRuntime | None = None,
    *,
    contacts: ContactReader | None = None,
    mailer: Mailer | None = None,
    today: Clock | None = None,
) -> FastAPI:
    wording = Wording(load_glossary(settings.feedback_glossary_file),
                      load_category_names(settings.feedback_categories_file))
    reader = contacts or intake_contacts(settings)
    sender = mailer or smtp_mailer(settings)
    clock: Clock = today or local_today(settings)
    mail_domain = parseaddr(settings.feedback_smtp_from)[1].rpartition("@")[2] or "localhost"

    @asynccontextmanager
    async def attach(app: FastAPI, rt: ServiceRuntime) -> AsyncIterator[None]:
        assert rt.pool is not None
        scheduler = Scheduler(
            pool=rt.pool, store=rt.store, contacts=reader, mailer=sender, wording=wording,
            today=clock, mail_domain=mail_domain,
            interval_s=settings.feedback_scheduler_interval_s,
            lease_s=settings.feedback_send_lease_s, max_attempts=settings.feedback_max_attempts,
            notifications=notification_counter(
                rt.telemetry.meter_provider.get_meter(f"golden_thread.{SOURCE}")),
        )
        app.state.scheduler = scheduler
        app.state.feedback = FeedbackReads(rt.pool, rt.store, wording, clock)
        task = asyncio.create_task(scheduler.run(), name="feedback-scheduler")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if isinstance(reader, HttpContactReader) and contacts is None:
                await reader.aclose()

    return service_app(
        name="feedback", settings=settings, runtime=runtime or build_runtime(settings),
        description="Tells every consenting participant, once and kindly, what changed "
        "because of what they said; keeps the story of change.",
        max_body_bytes=64 * 1024, routes=include_routes, attach=attach)
