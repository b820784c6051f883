"""Push: webhooks from the durable inbox into ingestion.webhook_data (see ingestion_patterns/push/)."""

from ingestion_patterns.push.assets import process_webhook_data, webhook_ingestion_job, webhook_pending_sensor

__all__ = ["process_webhook_data", "webhook_ingestion_job", "webhook_pending_sensor"]
