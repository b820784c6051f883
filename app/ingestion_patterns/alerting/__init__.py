"""Failure alerting: what people expect to hear about, posted to a Slack-compatible webhook.

``ALERT_WEBHOOK_URL`` (an incoming webhook; unset: alerting is off) receives ``{"text": …}`` for a
run that failed for good, a failed asset check, and a source stuck longer than ``ALERT_STUCK_AFTER``
(1 h); each message links to the run in the UI at ``DAGSTER_UI_URL``. ``sink.py`` posts,
``messages.py`` words it, ``sensors.py`` decides what and when, once per thing.
"""
