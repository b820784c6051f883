"""The alert sensors: a failed run, a failed asset check, a stuck source, each posted once.

- ``run_failure_alert`` (``dg.run_failure_sensor``): a run that failed for good, i.e. one the daemon
  will not retry (``dagster/will_retry`` is not true), with its job, source (the run's
  ``webhook/source_id`` or ``kafka/topic`` tag), the error of each failed step, any failed asset check
  and a link to the run. A blocking check that fails fails its run, so it arrives here.
- ``asset_check_alert`` (``dg.run_status_sensor`` on success): a run that succeeded with a failed
  asset check (a WARN, or a check that does not block).
- ``stuck_source_alert`` (``build_stuck_source_alert``): a webhook source whose oldest pending payload
  is older than ``ALERT_STUCK_AFTER``, or a declared Kafka topic (every ``KafkaTopicSource`` instance)
  that has lag while its stored offsets have not moved for that long; and a second message when it
  moves again.

Once: the two run sensors keep Dagster's cursor over run events, so each run is looked at once; the
stuck sensor keeps in its cursor which sources it has alerted, and writes a source's new state only
after its message went out (an unsent one is tried again at the next tick). A run sensor cannot
try again at a later tick (Dagster moves its cursor on either way): its POST is tried three times,
then the failure is recorded on the sensor's tick and in the run's event log.
No ``ALERT_WEBHOOK_URL``: nothing is read and nothing is sent.
"""

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from ..poll.assets import WarehouseBusy, read_stored_offsets, topic_jobs
from ..poll.client import KafkaResource
from ..poll.consume import partition_lag
from ..push.inbox import InboxUnavailable, PendingSummary
from ..push.resource import WebhookInboxResource
from . import messages
from .sink import AlertNotSent, AlertWebhookResource

_WILL_RETRY_TAG = "dagster/will_retry"
_OFF = "ALERT_WEBHOOK_URL is not set: alerting is off"


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetCheckEvaluation]:
    """The asset check evaluations of run ``run_id`` that did not pass."""
    evaluations = [
        record.dagster_event.event_specific_data
        for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        if record.dagster_event is not None
    ]
    return [e for e in evaluations if isinstance(e, dg.AssetCheckEvaluation) and not e.passed]


def step_errors(context: dg.RunFailureSensorContext) -> list[str]:
    """One line per failed step (its innermost error); the run's own failure message if no step failed."""
    errors = []
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        error = messages.root_message(data.error) if data and data.error else "failed"
        errors.append(f"{event.step_key}: {error}")
    if not errors and context.failure_event.message:
        errors.append(messages.shorten(context.failure_event.message.strip(), messages.MAX_ERROR_CHARS))
    return errors


@dg.run_failure_sensor(
    name="run_failure_alert",
    monitor_all_code_locations=True,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts a failed run (job, source, error, link) to ALERT_WEBHOOK_URL, once it will not be retried.",
)
def run_failure_alert(context: dg.RunFailureSensorContext, alerts: AlertWebhookResource) -> None:
    # Returns None: a run status sensor stops at the first run whose function returns something.
    run = context.dagster_run
    if not alerts.enabled:
        return
    if run.tags.get(_WILL_RETRY_TAG) == "true":
        context.log.info(f"run {run.run_id} failed and will be retried: its last attempt alerts, if it fails")
        return
    text = messages.run_failed(run, step_errors(context), failed_checks(context.instance, run.run_id), alerts)
    alerts.send(text)  # AlertNotSent: recorded on the tick and the run
    context.log.info(f"alerted: run {run.run_id} of {run.job_name} failed")


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="asset_check_alert",
    monitor_all_code_locations=True,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts the failed asset checks of a run that succeeded (WARN, or not blocking) to ALERT_WEBHOOK_URL.",
)
def asset_check_alert(context: dg.RunStatusSensorContext, alerts: AlertWebhookResource) -> None:
    if not alerts.enabled:
        return
    run = context.dagster_run
    checks = failed_checks(context.instance, run.run_id)
    if checks:
        alerts.send(messages.checks_failed(run, checks, alerts))
        context.log.info(f"alerted: {len(checks)} failed checks in run {run.run_id}")


# -- stuck sources -----------------------------------------------------------------------------------
# The cursor: {"webhook:<source>": {"alerted": true}, "kafka:<topic>": {"offsets": "0:5,1:9", "since": t,
# "alerted": bool}}. A change is (key, new entry or None to drop it, message to send first or None).
Change = tuple[str, dict[str, Any] | None, str | None]


def webhook_changes(
    state: dict[str, Any], pending: list[PendingSummary], now: float, alerts: AlertWebhookResource
) -> list[Change]:
    """Alert a source whose oldest pending payload is older than the limit, once; say when it is not."""
    changes: list[Change] = []
    seen = set()
    for summary in pending:
        key = f"webhook:{summary.source_id}"
        seen.add(key)
        age = summary.oldest_age_seconds() or 0.0
        stuck = summary.count > 0 and age >= alerts.stuck_after_seconds
        if stuck and key not in state:
            text = messages.webhook_stuck(summary.source_id, summary.count, age, alerts)
            changes.append((key, {"alerted": True}, text))
        elif not stuck and key in state:
            changes.append((key, None, messages.webhook_recovered(summary.source_id, summary.count)))
    for key in state:
        if key.startswith("webhook:") and key not in seen:  # nothing pending any more
            changes.append((key, None, messages.webhook_recovered(key.removeprefix("webhook:"), 0)))
    return changes


def kafka_changes(
    state: dict[str, Any], topic: str, stored: dict[int, int], lag: dict[int, int], now: float,
    alerts: AlertWebhookResource,
) -> list[Change]:  # fmt: skip
    """Alert a topic with lag whose stored offsets have not moved for the limit, once; say when they move."""
    key = f"kafka:{topic}"
    total = sum(lag.values())
    offsets = ",".join(f"{p}:{stored.get(p, 'start')}" for p in sorted(lag))
    entry = state.get(key)
    if total == 0:
        if entry is None:
            return []
        return [(key, None, messages.kafka_recovered(topic, 0) if entry.get("alerted") else None)]
    if entry is None or entry.get("offsets") != offsets:
        moved = messages.kafka_recovered(topic, total) if entry and entry.get("alerted") else None
        return [(key, {"offsets": offsets, "since": now, "alerted": False}, moved)]
    still = now - float(entry["since"])
    if still >= alerts.stuck_after_seconds and not entry.get("alerted"):
        return [(key, {**entry, "alerted": True}, messages.kafka_stuck(topic, total, still, alerts))]
    return []


async def _pending_sources(webhook_inbox: WebhookInboxResource) -> list[PendingSummary]:
    async with webhook_inbox.open() as inbox:
        return await inbox.pending_sources()


async def _lags(kafka: KafkaResource, stored: dict[str, dict[int, int]]) -> dict[str, dict[int, int]]:
    """Each topic's lag past its stored offsets, over one consumer session."""
    async with kafka.consumer_session() as consumer:
        return {topic: await partition_lag(consumer, topic, offsets) for topic, offsets in stored.items()}


def build_stuck_source_alert(jobs: Sequence[Any]) -> dg.SensorDefinition:
    """``stuck_source_alert`` over the inbox's webhook sources and every declared topic (the topics'
    jobs among ``jobs``, found by their tags; one that names no topic reads the kafka resource's)."""
    declared = sorted({route.topic for route in topic_jobs(jobs)}) or [""]

    @dg.sensor(
        name="stuck_source_alert",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts a webhook source pending, or a declared Kafka topic not moving, longer than "
        "ALERT_STUCK_AFTER to ALERT_WEBHOOK_URL; once, and again when it moves.",
    )
    def stuck_source_alert(
        context: dg.SensorEvaluationContext,
        alerts: AlertWebhookResource,
        webhook_inbox: WebhookInboxResource,
        kafka: KafkaResource,
        duckdb: DuckDBResource,
    ) -> dg.SensorResult | dg.SkipReason:
        if not alerts.enabled:
            return dg.SkipReason(_OFF)
        state: dict[str, Any] = json.loads(context.cursor) if context.cursor else {}
        now = time.time()
        notes: list[str] = []
        changes: list[Change] = []
        try:
            changes += webhook_changes(state, asyncio.run(_pending_sources(webhook_inbox)), now, alerts)
        except InboxUnavailable as error:
            notes.append(f"inbox unavailable, webhook sources not checked: {error}")
        topics = sorted({topic or kafka.topic for topic in declared} - {""})
        if kafka.bootstrap_servers and topics:
            try:
                stored = {topic: read_stored_offsets(duckdb.database, topic) for topic in topics}
                lags = asyncio.run(asyncio.wait_for(_lags(kafka, stored), timeout=30))
            except WarehouseBusy as error:
                notes.append(f"warehouse busy, Kafka not checked: {error}")
            except Exception as error:  # noqa: BLE001 - an unreachable broker is a note, not a crash
                notes.append(f"Kafka at {kafka.bootstrap_servers} unreachable, not checked: {error!r}")
            else:
                for topic, lag in lags.items():
                    if lag:
                        changes += kafka_changes(state, topic, stored[topic], lag, now, alerts)
        sent = 0
        for key, entry, text in changes:
            if text is not None:
                try:
                    alerts.send(text)
                except AlertNotSent as error:
                    notes.append(f"{key}: {error}; trying again next tick")
                    continue  # its state stays as it was, so the next tick sends it again
                sent += 1
            if entry is None:
                state.pop(key, None)
            else:
                state[key] = entry
        for note in notes:
            context.log.warning(note)
        stuck = sorted(key for key, entry in state.items() if entry.get("alerted"))
        summary = f"sent {sent} alerts; stuck now: {', '.join(stuck) or 'none'}"
        return dg.SensorResult(skip_reason="; ".join([summary, *notes]), cursor=json.dumps(state, sort_keys=True))

    return stuck_source_alert
