"""Alerting: failed runs and failed asset checks posted to ALERT_WEBHOOK_URL (see
ingestion_patterns/alerting/). ``stuck_source_alert`` watches every declared source, so
``definitions.py`` builds it over the instances' jobs."""

from ingestion_patterns.alerting.sensors import asset_check_alert, run_failure_alert

__all__ = ["asset_check_alert", "run_failure_alert"]
