"""Pull: the source API paged into raw_extract, checked, upserted into final_data (see ingestion_patterns/pull/)."""

from ingestion_patterns.pull.assets import (
    daily_pull_schedule,
    extract_source_data,
    load_to_storage,
    pull_job,
    validate_extracted_data,
)

__all__ = ["daily_pull_schedule", "extract_source_data", "load_to_storage", "pull_job", "validate_extracted_data"]
