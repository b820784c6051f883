"""`ingest` commands of this module (being written)."""

COMMANDS: list = []
