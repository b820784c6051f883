"""Pull pattern: the source API client, the contract checks, and landing with the cursor."""
