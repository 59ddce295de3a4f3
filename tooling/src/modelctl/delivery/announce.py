"""Notifications for single release actions (deploy, rollback, undeploy), built from their ledger record."""

from __future__ import annotations

from modelctl.ledger import Record
from modelctl.notify import Message, notify


def announce_record(record: Record, verdict: str, channel: str | None = None) -> None:
    facts = {"bento": record.bento or "-", "target": record.target}
    if record.url:
        facts["url"] = record.url
    if record.loadtest:
        facts["P90"] = f"{record.loadtest.get('p90_ms', '-')} ms"
        facts["error rate"] = f"{float(record.loadtest.get('error_rate') or 0):.2%}"
    if record.reason:
        facts["reason"] = record.reason
    notify(
        Message(
            title=f"{record.model} {verdict} ({record.env})",
            model=record.model,
            env=record.env,
            version=f"v{record.version}" if record.version else None,
            verdict=verdict,
            facts=facts,
            channel=channel,
        )
    )
