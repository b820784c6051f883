"""Retention: retention_job deletes landed inbox rows, loaded raw pages and landed poll plans hourly
(see ingestion_patterns/maintenance/)."""

from ingestion_patterns.maintenance.jobs import retention_job, retention_schedule

__all__ = ["retention_job", "retention_schedule"]
