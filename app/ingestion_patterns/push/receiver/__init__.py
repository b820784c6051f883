"""The webhook receiver: an aiohttp app (``create_app(config)``) served by gunicorn."""
