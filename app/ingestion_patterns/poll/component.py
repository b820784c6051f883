"""``KafkaTopicSource``: a Kafka topic declared in a ``defs.yaml``, as a Dagster Component.

The declaration's fields are ``KafkaTopicSpec``'s (``source.py``). Each instance builds its two assets
and its job (``assets.build_kafka_topic``); ``definitions.py`` builds the one ``kafka_polling_sensor``
over every instance's job.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from .assets import build_kafka_topic
from .source import KafkaTopicSpec, folder_name

SCAFFOLD = """\
# A Kafka topic, landed exactly once in ingestion.{name} (rejects, with the reason, in ingestion.{name}_rejects).
# Reference: docs/kafka-topic-source.md. The instance is named after this folder ({name}); set name: to change it.
type: {type_name}

attributes:
  topic: {topic}
  # consumer_group: {name}            # landed offsets are copied there for Kafka's lag tools; default KAFKA_GROUP_ID
  # max_records_per_poll: 1000000     # at most this many messages per run
  # batch_rows: 200000                # messages per landing transaction

  # json: each value a JSON object. avro: Confluent wire format, writer schemas from the registry whose
  # Confluent-compatible URL is in the variable registry_url_env names (default SCHEMA_REGISTRY_URL).
  value_format: json

  # The contract: each column's type (bigint, double, varchar, boolean, timestamptz), where it comes from
  # (path: dotted keys into the JSON object, or the Avro field; default the column's name), and whether a
  # message without it is a reject. Numbers must be finite. A later change may only add optional columns.
  columns:
    - {{name: id, type: varchar, required: true}}
    - {{name: amount, type: double, required: true}}
    - {{name: created_at, type: timestamptz, path: created_at}}
    # - {{name: customer_id, type: bigint, path: customer.id}}

  # Row checks: SQL predicates over the columns; a message for which one is not true is a reject with the reason.
  checks:
    - {{sql: amount >= 0, reason: negative amount}}

  # keep_key: true                    # the message key, in column message_key
  # keep_headers: true                # the headers, in column headers
  # dead_letter_topic: {topic}.dlq    # rejects are also produced there, the reason in header ingestion.reject.reason
"""


class KafkaTopicSourceScaffolder(dg.Scaffolder):
    """Writes a ``defs.yaml`` that works as written: a JSON topic named after its folder."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        target = Path(request.target_path)
        target.mkdir(parents=True, exist_ok=True)
        name = folder_name(target / "defs.yaml")
        text = SCAFFOLD.format(type_name=request.type_name, name=name, topic=name.replace("_", "-"))
        (target / "defs.yaml").write_text(text)


@dg.scaffold_with(KafkaTopicSourceScaffolder)
class KafkaTopicSource(dg.Component, dg.Resolvable, KafkaTopicSpec):
    """A Kafka topic: its contract (columns, checks) and landing; lands exactly once in ingestion.<name>
    (rejects in ingestion.<name>_rejects) through its own two assets and job."""

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return self.definitions(default_name=folder_name(Path(context.path) / "defs.yaml"))

    def definitions(self, default_name: str = "") -> dg.Definitions:
        """The instance's assets and job (also for a declaration from INGEST_SOURCES_FILE, which has no folder)."""
        spec = KafkaTopicSpec.model_validate(self.model_dump()).named(default_name)
        poll, land, job = build_kafka_topic(spec)
        return dg.Definitions(assets=[poll, land], jobs=[job])
