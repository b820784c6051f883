"""Pull pattern: REST API sources declared (``RestApiSource``), read by the declarative client,
checked against their contract, and landed with their cursor."""
