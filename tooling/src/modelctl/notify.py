"""Tell people what happened: Slack incoming webhook, GitHub step summary, or the terminal.

A notification never changes a run's outcome: any failure to deliver one (a refused webhook, a malformed
URL, a network error) is a warning. Every text is redacted (URL passwords, secret values) before it leaves.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from modelctl.console import err
from modelctl.redact import redact

RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass
class Message:
    title: str
    model: str
    verdict: str  # e.g. "deployed", "failed", "gate breached", "kept champion"
    env: str | None = None
    version: str | None = None
    facts: dict[str, str] = field(default_factory=dict)
    channel: str | None = None

    def run_url(self) -> str | None:
        if os.environ.get("GITHUB_RUN_ID") and os.environ.get("GITHUB_REPOSITORY"):
            server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
            return f"{server}/{os.environ['GITHUB_REPOSITORY']}/actions/runs/{os.environ['GITHUB_RUN_ID']}"
        return None

    def lines(self) -> list[str]:
        head = [f"model: {self.model}"]
        if self.env:
            head.append(f"environment: {self.env}")
        if self.version:
            head.append(f"version: {self.version}")
        head.append(f"verdict: {self.verdict}")
        head += [f"{k}: {v}" for k, v in self.facts.items()]
        if url := self.run_url():
            head.append(f"run: {url}")
        return head

    def plain(self) -> str:
        """The message for a terminal: redacted, not escaped for Slack."""
        return redact(f"*{self.title}*\n" + "\n".join(f"• {line}" for line in self.lines()))

    def text(self) -> str:
        return slack_escape(self.plain())

    def markdown(self) -> str:
        return redact(f"### {self.title}\n\n" + "\n".join(f"- {line}" for line in self.lines()) + "\n")

    def payload(self) -> dict[str, object]:
        body: dict[str, object] = {
            "text": self.text(),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": redact(self.title)[:150]}},
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": slack_escape(redact("\n".join(self.lines())))[:2900]},
                },
            ],
        }
        if self.channel:
            body["channel"] = self.channel
        return body


def slack_escape(text: str) -> str:
    """Slack's mrkdwn control characters as text: values (a workflow input, an error) cannot ping `<!channel>`,
    link elsewhere or mention people."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def post_slack(url: str, message: Message, attempts: int = 4, backoff_s: float = 0.5, timeout: float = 5.0) -> bool:
    """POST to the webhook, retrying 429/5xx and connection errors with exponential backoff.

    Never raises: a webhook secret with a stray newline, an invalid URL or any client error is a warning.
    """
    import httpx  # deferred: most commands never notify

    url = url.strip()
    delay = backoff_s
    problem = "not attempted"
    for attempt in range(1, attempts + 1):
        try:
            response = httpx.post(url, json=message.payload(), timeout=timeout)
        except httpx.TransportError as exc:  # connection problems: worth another try
            problem = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - invalid URL, protocol errors: give up, but never fail the run
            err.print(f"warning: Slack notification not sent ({type(exc).__name__}: {redact(str(exc))})", markup=False)
            return False
        else:
            if response.status_code < 300:
                return True
            problem = f"HTTP {response.status_code}: {redact(response.text[:200])}"
            if response.status_code not in RETRY_STATUSES:
                err.print(f"warning: Slack notification refused ({problem}); not retrying", markup=False)
                return False
            retry_after = response.headers.get("retry-after", "")
            if retry_after.isdigit():
                delay = max(delay, min(float(retry_after), 30.0))
        if attempt < attempts:
            time.sleep(delay)
            delay *= 2
    err.print(f"warning: Slack notification failed after {attempts} attempts ({redact(problem)})", markup=False)
    return False


def append_step_summary(markdown: str) -> None:
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    except OSError as exc:
        err.print(f"warning: could not write the GitHub step summary: {exc}", markup=False)


def notify(message: Message, extra_markdown: str = "") -> bool:
    """Slack when SLACK_WEBHOOK_URL is set, else print; always the step summary in CI. True when delivered.

    Never raises: whatever goes wrong here is printed as a warning and the run's outcome stands.
    """
    try:
        append_step_summary(message.markdown() + redact(extra_markdown))
        url = os.environ.get("SLACK_WEBHOOK_URL")
        if not url:
            err.print("notification (SLACK_WEBHOOK_URL not set, printing instead):\n" + message.plain(), markup=False)
            return False
        return post_slack(url, message)
    except Exception as exc:  # noqa: BLE001 - a notification never changes a run's outcome
        err.print(f"warning: notification failed ({type(exc).__name__}: {redact(str(exc))})", markup=False)
        return False
