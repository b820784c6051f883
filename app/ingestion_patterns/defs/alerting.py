"""Alerting: failed runs, failed asset checks and stuck sources posted to ALERT_WEBHOOK_URL
(see ingestion_patterns/alerting/)."""

from ingestion_patterns.alerting.sensors import asset_check_alert, run_failure_alert, stuck_source_alert

__all__ = ["asset_check_alert", "run_failure_alert", "stuck_source_alert"]
