"""Retention: what the platform deletes, and after how long, so its stores stop growing with time.

Only staging and bookkeeping is deleted; the landed data (``webhook_data``, ``final_data``,
``kafka_events`` and the rejects tables) is the warehouse and is kept.

- The webhook inbox (``WEBHOOK_INBOX_RETENTION``, 7 days): rows landed longer ago than the window.
  Until then a landed row keeps its event id, so a re-sent event is answered as a duplicate; after it,
  the id is accepted as new and its landing is a no-op (the warehouse's primary key). Pending rows stay.
- ``ingestion.raw_extract`` and ``ingestion.pull_pages`` (``PULL_RAW_RETENTION``, 7 days): pages already
  loaded into ``final_data`` (``page_seq`` up to ``pull_state.loaded_page_seq``) and older than the window.
- ``ingestion.kafka_poll_plan``: the plan rows whose range has landed (the stored offset has reached
  ``to_offset``); Kafka is the log, the plan only says what to land next.

``retention_job`` (``jobs.py``) runs both parts hourly: the inbox part outside the ``duckdb`` pool, a
batch per transaction so the receiver keeps committing; the DuckDB part in the pool, like every writer.
"""
