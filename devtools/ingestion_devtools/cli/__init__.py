"""The development commands of ``ingest`` (added to it when this package is installed)."""

from __future__ import annotations

from .demo import demo, dev
from .kafka import COMMANDS as _KAFKA
from .mock_api import COMMANDS as _MOCK_API
from .registry import COMMANDS as _REGISTRY
from .webhooks import simulate_webhooks

# In help order.
COMMANDS = [demo, dev, simulate_webhooks, *_MOCK_API, *_KAFKA, *_REGISTRY]
