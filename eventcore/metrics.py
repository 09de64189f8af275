"""The core's metrics: events appended, published and consumed, dead letters, outbox backlog,
consumer lag. Gauges read values a refresher task updates, since OTel callbacks cannot await."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from opentelemetry.metrics import CallbackOptions, Meter, Observation


@dataclass
class GaugeValues:
    outbox_backlog: int = 0
    outbox_oldest_age_s: float = 0.0
    consumer_lag: dict[tuple[str, str, int], int] = field(default_factory=dict)


class CoreMetrics:
    def __init__(self, meter: Meter, source: str) -> None:
        self.source = source
        self.values = GaugeValues()
        self.appended = meter.create_counter(
            "gt_events_appended", unit="{event}", description="Events appended to the store")
        self.published = meter.create_counter(
            "gt_events_published", unit="{event}", description="Events the relay published")
        self.consumed = meter.create_counter(
            "gt_events_consumed", unit="{event}",
            description="Events consumed, by consumer, type and outcome")
        self.dead_letters = meter.create_counter(
            "gt_dead_letters", unit="{message}", description="Messages sent to a dead-letter topic")
        meter.create_observable_gauge(
            "gt_outbox_backlog", callbacks=[self._backlog], unit="{event}",
            description="Events stored but not yet published")
        meter.create_observable_gauge(
            "gt_outbox_oldest_age", callbacks=[self._oldest], unit="s",
            description="Age of the oldest unpublished event")
        meter.create_observable_gauge(
            "gt_consumer_lag", callbacks=[self._lag], unit="{message}",
            description="Messages behind the end of each partition, per consumer group")

    def _backlog(self, _: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self.values.outbox_backlog, {"source": self.source})

    def _oldest(self, _: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self.values.outbox_oldest_age_s, {"source": self.source})

    def _lag(self, _: CallbackOptions) -> Iterable[Observation]:
        for (group, topic, partition), lag in sorted(self.values.consumer_lag.items()):
            yield Observation(lag, {"group": group, "topic": topic, "partition": str(partition)})
