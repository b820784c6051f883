"""Pure parts of the local broker (config, cache location) and of the sensor's decision."""

import uuid

import dagster as dg
import pytest

from ingestion_devtools import kafka_broker as broker
from ingestion_patterns.dagster_conventions import RUN_RETRY_TAGS
from ingestion_patterns.poll.assets import failed_attempts_at, kafka_poll_job, run_request_for
from ingestion_patterns.poll.client import KafkaResource


def test_server_properties_describe_one_kraft_node_on_loopback(tmp_path):
    text = broker.server_properties(port=9094, controller_port=9095, data_dir=tmp_path)
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9095"
    assert props["log.dirs"] == str(tmp_path / "logs")
    assert props["offsets.topic.replication.factor"] == "1"


def test_cluster_ids_are_kafka_uuids_that_cannot_pass_for_options():
    ids = {broker._cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_jar_cache_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert broker.cache_dir("9.9.9") == tmp_path / "ingestion-patterns" / "kafka" / "9.9.9"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert broker.cache_dir("9.9.9") == tmp_path / "home" / ".cache" / "ingestion-patterns" / "kafka" / "9.9.9"


def test_no_lag_skips_with_the_lag_in_the_reason():
    decision = run_request_for("transactions", {0: 10, 1: 4}, {0: 0, 1: 0})
    assert isinstance(decision, dg.SkipReason)
    assert "lag 0 over 2 partition(s)" in decision.skip_message


def test_lag_asks_for_a_run_keyed_by_the_stored_offsets():
    decision = run_request_for("transactions", {0: 10}, {0: 3, 1: 5})
    assert isinstance(decision, dg.RunRequest)
    assert decision.run_key == "transactions@0:10,1:start"
    assert decision.tags["kafka/lag"] == "8"
    assert decision.run_config["ops"]["poll_kafka_events"]["config"]["kafka_topic"] == "transactions"


def test_after_a_failed_run_at_the_same_offsets_the_key_changes_so_the_sensor_retries():
    first = run_request_for("transactions", {0: 10}, {0: 3})
    retry = run_request_for("transactions", {0: 10}, {0: 3}, failed_attempts=1)
    assert retry.run_key == first.run_key + "#retry1"
    assert retry.tags["kafka/offsets"] == first.tags["kafka/offsets"]
    assert run_request_for("transactions", {0: 13}, {0: 1}).tags["kafka/offsets"] != first.tags["kafka/offsets"]


def test_resource_builds_sasl_and_tls_client_settings(tmp_path):
    plain = KafkaResource(bootstrap_servers="k:9092").client_kwargs()
    assert plain == {"bootstrap_servers": "k:9092", "client_id": "ingestion-patterns", "security_protocol": "PLAINTEXT"}
    sasl = KafkaResource(
        bootstrap_servers="k:9092",
        security_protocol="sasl_plaintext",
        sasl_mechanism="scram-sha-512",
        sasl_username="u",
        sasl_password="p",
    ).client_kwargs("other:9092")
    assert sasl["bootstrap_servers"] == "other:9092"
    assert (sasl["security_protocol"], sasl["sasl_mechanism"]) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")
    assert (sasl["sasl_plain_username"], sasl["sasl_plain_password"]) == ("u", "p")
    tls = KafkaResource(bootstrap_servers="k:9093", security_protocol="SSL").client_kwargs()
    assert tls["ssl_context"] is not None and "sasl_mechanism" not in tls


def test_resource_without_servers_or_with_a_bad_protocol_fails_clearly():
    with pytest.raises(dg.Failure, match="KAFKA_BOOTSTRAP_SERVERS"):
        KafkaResource().client_kwargs()
    with pytest.raises(dg.Failure, match="KAFKA_SECURITY_PROTOCOL"):
        KafkaResource(bootstrap_servers="k:1", security_protocol="TLS").client_kwargs()


def test_the_poll_job_has_its_failed_runs_retried_by_the_daemon():
    assert RUN_RETRY_TAGS.items() <= kafka_poll_job.tags.items()  # beside the tags the one sensor finds it by


def test_a_failed_run_the_daemon_will_retry_keeps_the_key_and_one_it_gave_up_on_changes_it():
    with dg.instance_for_test() as instance:

        def failed(status=dg.DagsterRunStatus.FAILURE, offsets="at-10", **tags):
            instance.add_run(
                dg.DagsterRun(
                    job_name=kafka_poll_job.name,
                    run_id=str(uuid.uuid4()),
                    status=status,
                    tags={"kafka/offsets": offsets, **tags},
                )
            )

        failed(**{"dagster/will_retry": "true"})  # its retry is on the way: no sensor run beside it
        failed(offsets="at-13")  # other offsets
        assert failed_attempts_at(instance, "at-10") == 0
        failed(**{"dagster/will_retry": "false"})  # the daemon's last retry failed too
        assert failed_attempts_at(instance, "at-10") == 1
        failed()  # retries off: no tag at all
        failed(dg.DagsterRunStatus.CANCELED)
        assert failed_attempts_at(instance, "at-10") == 3
