"""Push pattern: webhook receiver, durable inbox, validation and landing in ingestion.webhook_data."""
