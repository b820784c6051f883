"""Where alerts go: a Slack-compatible incoming webhook (``ALERT_WEBHOOK_URL``), POST ``{"text": …}``.

Slack, Mattermost, Rocket.Chat, Discord's ``/slack`` endpoint and most chat tools accept this body.
No URL: alerting is off and every sensor skips. A POST that fails (no answer, 5xx, 429) is tried
again, three times in all, a second apart and growing; then the caller sees ``AlertNotSent``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import dagster as dg
from pydantic import Field

#: Longer texts are cut: chat tools truncate or refuse long messages, and an alert should be short.
MAX_TEXT_CHARS = 3000


class AlertNotSent(Exception):
    """The alert webhook did not take the message after every attempt."""


class AlertWebhookResource(dg.ConfigurableResource):
    """The alert channel and the links its messages carry."""

    url: str = Field(default="", description="Slack-compatible incoming webhook URL (ALERT_WEBHOOK_URL); empty: off")
    ui_url: str = Field(default="http://127.0.0.1:3000", description="The Dagster UI's base URL (DAGSTER_UI_URL)")
    stuck_after_seconds: float = Field(
        default=3600, gt=0, description="A source stuck this long alerts (ALERT_STUCK_AFTER)"
    )
    timeout_seconds: float = Field(default=10, gt=0, description="Per POST")
    attempts: int = Field(default=3, ge=1, description="POSTs per alert before giving up")

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def run_link(self, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/runs/{run_id}"

    def runs_link(self, tag: str, value: str) -> str:
        """The UI's run list filtered to one tag value."""
        return f"{self.ui_url.rstrip('/')}/runs?" + urllib.parse.urlencode({"q[]": f"tag:{tag}={value}"})

    def send(self, text: str) -> None:
        """POST ``{"text": text}``; raise ``AlertNotSent`` when every attempt failed."""
        if len(text) > MAX_TEXT_CHARS:
            text = text[: MAX_TEXT_CHARS - 1] + "…"
        body = json.dumps({"text": text}).encode()
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(attempt)
            request = urllib.request.Request(
                self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                    if 200 <= response.status < 300:
                        return
                    problem = f"HTTP {response.status}"
            except urllib.error.HTTPError as error:
                problem = f"HTTP {error.code}"
                if error.code < 500 and error.code != 429:
                    break  # the URL or the body is wrong: trying again changes nothing
            except (urllib.error.URLError, OSError) as error:
                problem = str(getattr(error, "reason", error))
        raise AlertNotSent(f"the alert webhook did not take the message ({problem})")
