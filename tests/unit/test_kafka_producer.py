"""The test-data producer's messages: exact bad share, each bad kind really bad, repeatable."""

import json
from collections import Counter

import pytest

from ingestion_devtools.kafka_producer import BAD_KINDS, REQUIRED_FIELDS, messages


def test_bad_ratio_gives_exactly_that_share_of_each_kind():
    batch = list(messages(1000, bad_ratio=0.3, seed=7))
    kinds = Counter(m.kind for m in batch)
    assert sum(kinds[k] for k in BAD_KINDS) == 300
    assert all(kinds[k] > 50 for k in BAD_KINDS)


def test_each_kind_is_what_it_says():
    for message in messages(600, bad_ratio=0.5, seed=8):
        if message.kind == "malformed_json":
            with pytest.raises(json.JSONDecodeError):
                json.loads(message.value)
            continue
        event = json.loads(message.value)
        present = [name for name in REQUIRED_FIELDS if name in event]
        if message.kind == "missing_field":
            assert len(present) == len(REQUIRED_FIELDS) - 1
        else:
            assert present == list(REQUIRED_FIELDS)
            assert (event["amount"] < 0) == (message.kind == "negative_amount")


def test_messages_are_about_200_bytes_with_optional_keys_and_headers():
    keyed = list(messages(100, seed=9, headers=True))
    assert all(150 <= len(m.value) <= 230 for m in keyed)
    assert all(m.key == json.loads(m.value)["account_id"].encode() for m in keyed)
    assert all(dict(m.headers)["source"] == b"ingest-produce" for m in keyed)
    bare = list(messages(10, seed=9, keys=False))
    assert all(m.key is None and m.headers == [] for m in bare)


def test_a_seed_repeats_the_transactions_and_no_seed_varies_them():
    ids = lambda batch: [json.loads(m.value)["transaction_id"] for m in batch]  # noqa: E731
    assert ids(messages(5, seed=1)) == ids(messages(5, seed=1))
    assert ids(messages(5)) != ids(messages(5))
    assert len(set(ids(messages(1000, seed=2)))) == 1000


def test_bad_ratio_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError):
        list(messages(1, bad_ratio=1.5))
