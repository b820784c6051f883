"""The component types of this project (dg's ``registry_modules``): ``dg list components`` shows them,
``dg scaffold defs ingestion_patterns.components.<Type> <path>`` writes an instance."""

from .poll.component import KafkaTopicSource
from .pull.component import RestApiSource
from .push.component import WebhookSource

__all__ = ["KafkaTopicSource", "RestApiSource", "WebhookSource"]
