"""The poll pattern's Kafka side: a local broker for development and tests, and a test-data producer."""
