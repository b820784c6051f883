"""Push pattern: the webhook receiver (aiohttp under gunicorn) and its durable inbox."""
