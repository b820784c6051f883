"""The alert texts: short, one fact per line, a link to where to look."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg

from .sink import AlertWebhookResource

#: The run tags that name a run's source, as the sensors set them.
SOURCE_TAGS = {"webhook/source_id": "webhook source", "kafka/topic": "Kafka topic"}
# Where a run started by hand (no sensor tags) names its source: op -> (config key, label).
_SOURCE_CONFIG = {
    "process_webhook_data": ("source_id", "webhook source"),
    "process_kafka_events": ("kafka_topic", "Kafka topic"),
}
_JOB_SOURCES = {"pull_job": "the source API", "retention_job": "retention"}

MAX_ERROR_CHARS = 600


def source_of(run: dg.DagsterRun) -> str:
    """``webhook source shop``, ``Kafka topic transactions``, …, or "" when the run names none."""
    for tag, label in SOURCE_TAGS.items():
        if value := run.tags.get(tag):
            return f"{label} {value}"
    ops = (run.run_config or {}).get("ops", {}) if isinstance(run.run_config, dict) else {}
    for op, (key, label) in _SOURCE_CONFIG.items():
        value = ((ops.get(op) or {}).get("config") or {}).get(key)
        if value:
            return f"{label} {value}"
    return _JOB_SOURCES.get(run.job_name, "")


def root_message(error: Any) -> str:
    """The error a step raised, from a ``SerializableErrorInfo``: past Dagster's own wrappers (an
    ``op execution`` error around it) to the user's exception, named by its class without module."""
    while (getattr(error, "cls_name", "") or "").startswith("Dagster") and getattr(error, "cause", None):
        error = error.cause
    message = (getattr(error, "message", None) or str(error)).strip()
    cls_name = getattr(error, "cls_name", None)
    if cls_name:
        head, sep, rest = message.partition(": ")
        if sep and head.endswith(cls_name):
            message = f"{cls_name}: {rest}"
    return shorten(message, MAX_ERROR_CHARS)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _title(run: dg.DagsterRun) -> str:
    source = source_of(run)
    return f"{run.job_name} ({source})" if source else run.job_name


def _attempt(run: dg.DagsterRun) -> str:
    retries = run.tags.get("dagster/retry_number")
    return f", attempt {int(retries) + 1}" if retries and retries.isdigit() else ""


def check_line(evaluation: dg.AssetCheckEvaluation) -> str:
    severity = evaluation.severity.value if evaluation.severity else "ERROR"
    line = f"Failed check: {evaluation.asset_key.to_user_string()}:{evaluation.check_name} ({severity})"
    if evaluation.description:
        line += f": {shorten(evaluation.description, MAX_ERROR_CHARS)}"
    return line


def run_failed(
    run: dg.DagsterRun,
    errors: Sequence[str],
    checks: Iterable[dg.AssetCheckEvaluation],
    alerts: AlertWebhookResource,
) -> str:
    lines = [f"🔴 Run failed: {_title(run)}{_attempt(run)}"]
    lines += [f"Error: {error}" for error in errors] or ["Error: unknown (see the run's logs)"]
    lines += [check_line(check) for check in checks]
    lines.append(f"Run: {alerts.run_link(run.run_id)}")
    return "\n".join(lines)


def checks_failed(run: dg.DagsterRun, checks: Sequence[dg.AssetCheckEvaluation], alerts: AlertWebhookResource) -> str:
    noun = "check" if len(checks) == 1 else "checks"
    lines = [f"⚠️ Asset {noun} failed in {_title(run)} (the run succeeded)"]
    lines += [check_line(check) for check in checks]
    lines.append(f"Run: {alerts.run_link(run.run_id)}")
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """``2h 05m``, ``3m 20s``, ``45s``."""
    seconds = int(seconds)
    if seconds >= 86_400:
        return f"{seconds // 86_400}d {seconds % 86_400 // 3600:02d}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


def webhook_stuck(source: str, count: int, age_seconds: float, alerts: AlertWebhookResource) -> str:
    return (
        f"⏳ Webhook source {source} is stuck: {count} payloads pending, the oldest received "
        f"{duration(age_seconds)} ago (limit {duration(alerts.stuck_after_seconds)}).\n"
        f"Runs: {alerts.runs_link('webhook/source_id', source)}"
    )


def webhook_recovered(source: str, count: int) -> str:
    left = f"{count} payloads pending" if count else "nothing pending"
    return f"✅ Webhook source {source} is moving again: {left}."


def kafka_stuck(topic: str, lag: int, since_seconds: float, alerts: AlertWebhookResource) -> str:
    return (
        f"⏳ Kafka topic {topic} is stuck: {lag} messages behind and the stored offsets have not moved for "
        f"{duration(since_seconds)} (limit {duration(alerts.stuck_after_seconds)}).\n"
        f"Runs: {alerts.runs_link('kafka/topic', topic)}"
    )


def kafka_recovered(topic: str, lag: int) -> str:
    left = f"{lag} messages behind" if lag else "caught up"
    return f"✅ Kafka topic {topic} is moving again: {left}."
