"""Tables and landing functions of the kafka pattern (being written)."""

DDL: list[str] = []
