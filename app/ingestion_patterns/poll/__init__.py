"""Poll pattern: Kafka client, poll plan, vectorised validation, landing with the offsets."""
