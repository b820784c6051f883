"""Development tools of ingestion-patterns, left out of the runtime images."""
