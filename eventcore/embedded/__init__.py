"""The embedded infrastructure stack: a Kafka-protocol broker and PostgreSQL on loopback.

For one machine with no Docker, and for the test suite. ``EmbeddedStack`` starts only what the
settings do not name: ``GT_KAFKA_BOOTSTRAP_SERVERS`` / ``GT_DATABASE_URL`` point at real servers
and nothing is started for them. ``GT_INFRA=testcontainers`` uses real Apache Kafka and
PostgreSQL containers instead, where a Docker engine exists.
"""

from eventcore.embedded.endpoints import StackEndpoints
from eventcore.embedded.process import StackControlError, StackStartError
from eventcore.embedded.stack import EmbeddedStack
from eventcore.embedded.topics import create_topics

__all__ = [
    "EmbeddedStack",
    "StackControlError",
    "StackEndpoints",
    "StackStartError",
    "create_topics",
]
