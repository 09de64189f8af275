"""What the relay counts once a batch is acknowledged: events published per type (one
measurement per type, not per message) and, per partition, the newest offset and its event id
(the broker acknowledges each partition's record batch with its base offset)."""

from __future__ import annotations

from aiokafka.structs import RecordMetadata
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from eventcore.brokerwatch import BrokerWatch
from eventcore.messaging import OutgoingMessage, envelope_message
from eventcore.metrics import CoreMetrics
from eventcore.produce import PartitionBatch
from eventcore.relay import _account


def _message(sequence: int, event_type: str, trace: bool) -> OutgoingMessage:
    envelope = {"id": f"e{sequence}", "type": event_type, "source": "intake",
                "sequence": sequence, "subject": f"s{sequence}"}
    if trace:  # headers after ce_type, as the relay's traced messages have them
        envelope["traceparent"] = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    return envelope_message("t", envelope)


def test_an_acknowledged_batch_is_counted_per_type_and_its_newest_offsets_remembered() -> None:
    reader = InMemoryMetricReader()
    metrics = CoreMetrics(MeterProvider(metric_readers=[reader]).get_meter("test"), "intake")
    watch = BrokerWatch("unused:9092")
    kinds = ["ConversationLogged", "ConsentChanged", "ConversationLogged", "ParticipantErased",
             "ConversationLogged"]
    messages = [_message(n, kind, trace=n % 2 == 0) for n, kind in enumerate(kinds, 1)]
    # Partition 0's record batch took e1, e3, e5 at offsets 12, 13, 14; partition 1's e2, e4
    # at 20, 21.
    batches = [PartitionBatch("t", 0, None, messages[0::2]),
               PartitionBatch("t", 1, None, messages[1::2])]
    acks = [RecordMetadata("t", 0, None, 12, 0, -1, 0), RecordMetadata("t", 1, None, 20, 0, -1, 0)]

    _account(metrics, watch, batches, acks)
    _account(metrics, None, [PartitionBatch("t", 0, None, messages[:1])], acks[:1])

    data = reader.get_metrics_data()
    assert data is not None
    [published] = [m for rm in data.resource_metrics for sm in rm.scope_metrics
                   for m in sm.metrics if m.name == "gt_events_published"]
    counted = {}
    for point in published.data.data_points:
        assert isinstance(point, NumberDataPoint) and point.attributes is not None
        counted[point.attributes["type"]] = point.value
    assert counted == {"ConversationLogged": 4, "ConsentChanged": 1, "ParticipantErased": 1}
    assert watch._acked == {("t", 0): (14, b"e5"), ("t", 1): (21, b"e4")}
