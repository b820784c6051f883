"""Tables and landing functions of the pull pattern (being written)."""

DDL: list[str] = []
