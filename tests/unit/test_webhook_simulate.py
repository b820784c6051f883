"""The simulator's event shapes: valid ones carry id/timestamp/data; bad_ratio picks a fixed share."""

from datetime import datetime

import pytest

from ingestion_devtools.webhook_simulator import make_event, spread


@pytest.mark.parametrize("count, ratio, expected", [(100, 0.05, 5), (10, 1.0, 10), (10, 0.0, 0), (3, 0.5, 1)])
def test_spread_picks_round_count_times_ratio(count, ratio, expected):
    picked = spread(count, ratio)
    assert len(picked) == expected and picked <= set(range(count))


def test_valid_events_have_the_reference_shape():
    event = make_event("evt-1")
    assert event["id"] == "evt-1" and isinstance(event["data"], dict)
    datetime.fromisoformat(event["timestamp"])


def test_schema_invalid_events_lack_data_or_a_valid_timestamp():
    kinds = set()
    for i in range(20):
        event = make_event(f"evt-{i}", schema_invalid=True)
        if "data" not in event:
            kinds.add("no data")
        else:
            with pytest.raises(ValueError):
                datetime.fromisoformat(event["timestamp"])
            kinds.add("bad timestamp")
    assert kinds == {"no data", "bad timestamp"}
