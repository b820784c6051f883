"""ReceiverConfig.from_env: defaults, limits, and per-source secrets from env and file."""

import json

import pytest

from ingestion_patterns.push.receiver.config import ConfigError, ReceiverConfig


def test_defaults_are_the_documented_ones():
    config = ReceiverConfig.from_env({})
    assert config.inbox_url.startswith("sqlite:///")
    assert config.max_body_bytes == 1024 * 1024
    assert config.signature_tolerance_seconds == 300
    assert config.secrets == {}
    assert config.secret_for("anything") is None


def test_settings_come_from_the_environment():
    config = ReceiverConfig.from_env(
        {
            "WEBHOOK_INBOX_URL": "postgresql://u@h/db",
            "WEBHOOK_MAX_BODY_BYTES": "2048",
            "WEBHOOK_SIGNATURE_TOLERANCE_SECONDS": "60",
            "WEBHOOK_RETRY_AFTER_SECONDS": "9",
            "WEBHOOK_INBOX_TIMEOUT_SECONDS": "2.5",
        }
    )
    assert config.inbox_url == "postgresql://u@h/db"
    assert (config.max_body_bytes, config.signature_tolerance_seconds) == (2048, 60)
    assert (config.retry_after_seconds, config.inbox_timeout_seconds) == (9, 2.5)


def test_secret_env_name_is_the_upper_cased_source_with_underscores():
    config = ReceiverConfig.from_env({"WEBHOOK_SECRET_MY_SOURCE": "s3cret", "WEBHOOK_SECRET_GITHUB": "gh"})
    assert config.secret_for("my-source") == "s3cret"
    assert config.secret_for("My_Source") == "s3cret"
    assert config.secret_for("github") == "gh"
    assert config.secret_for("other") is None


def test_secrets_file_is_read_and_the_environment_wins(tmp_path):
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"stripe-like": "from-file", "both": "from-file"}))
    config = ReceiverConfig.from_env({"WEBHOOK_SECRETS_FILE": str(secrets_file), "WEBHOOK_SECRET_BOTH": "from-env"})
    assert config.secret_for("stripe-like") == "from-file"
    assert config.secret_for("both") == "from-env"


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"a": 1}', '{"a": ""}'])
def test_a_bad_secrets_file_fails_at_start_with_its_name(tmp_path, content):
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(content)
    with pytest.raises(ConfigError, match="WEBHOOK_SECRETS_FILE"):
        ReceiverConfig.from_env({"WEBHOOK_SECRETS_FILE": str(secrets_file)})


def test_a_missing_secrets_file_fails_at_start(tmp_path):
    with pytest.raises(ConfigError, match="WEBHOOK_SECRETS_FILE"):
        ReceiverConfig.from_env({"WEBHOOK_SECRETS_FILE": str(tmp_path / "absent.json")})


@pytest.mark.parametrize(
    "name, value",
    [
        ("WEBHOOK_MAX_BODY_BYTES", "lots"),
        ("WEBHOOK_MAX_BODY_BYTES", "0"),
        ("WEBHOOK_SIGNATURE_TOLERANCE_SECONDS", "-1"),
        ("WEBHOOK_INBOX_TIMEOUT_SECONDS", "soon"),
    ],
)
def test_unusable_numbers_are_refused_with_the_setting_name(name, value):
    with pytest.raises(ConfigError, match=name):
        ReceiverConfig.from_env({name: value})


def test_secrets_do_not_appear_in_repr():
    assert "s3cret" not in repr(ReceiverConfig.from_env({"WEBHOOK_SECRET_A": "s3cret"}))
