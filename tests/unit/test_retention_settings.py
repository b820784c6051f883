"""The retention and alerting settings: durations as people write them, safe defaults, clear errors."""

from __future__ import annotations

import pytest

from ingestion_patterns.resources import build_resources
from ingestion_patterns.settings import ConfigError, load_settings, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 604_800), ("12h", 43_200), ("90m", 5_400), ("45s", 45), ("1w", 604_800), ("1d12h", 129_600),
     ("3600", 3_600), ("0.5", 0.5), (" 2H ", 7_200), (30, 30)],
)  # fmt: skip
def test_durations_read_as_seconds(text, seconds):
    assert parse_duration(text) == seconds


def test_defaults_keep_a_week_and_alert_after_an_hour_with_alerting_off():
    settings = load_settings({})
    assert settings.webhook_inbox_retention == settings.pull_raw_retention == 7 * 86_400
    assert settings.alert_stuck_after == 3_600
    assert settings.alert_webhook_url == ""
    resources = build_resources(settings)
    assert resources["retention"].webhook_inbox_seconds == 7 * 86_400
    assert not resources["alerts"].enabled


def test_a_duration_that_is_not_one_names_its_variable():
    with pytest.raises(ConfigError, match=r"WEBHOOK_INBOX_RETENTION: .*not a duration: '7 days'"):
        load_settings({"WEBHOOK_INBOX_RETENTION": "7 days"})
    with pytest.raises(ConfigError, match=r"PULL_RAW_RETENTION: .*greater than 0"):
        load_settings({"PULL_RAW_RETENTION": "0"})


def test_durations_survive_the_trip_to_a_child_process_environment():
    settings = load_settings({"WEBHOOK_INBOX_RETENTION": "12h", "ALERT_STUCK_AFTER": "2h"})
    again = load_settings(settings.env())
    assert (again.webhook_inbox_retention, again.alert_stuck_after) == (43_200, 7_200)
