"""Poll: a Kafka topic landed in ingestion.kafka_events with its offsets (see ingestion_patterns/poll/)."""

from ingestion_patterns.poll.assets import kafka_poll_job, kafka_polling_sensor, poll_kafka_events, process_kafka_events

__all__ = ["kafka_poll_job", "kafka_polling_sensor", "poll_kafka_events", "process_kafka_events"]
