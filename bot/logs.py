"""Logging set-up: text or JSON lines, and a filter that redacts secrets from every record."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable

# Patterns that carry credentials whatever their value: auth headers, tokens in URLs, Discord webhook tokens.
_PATTERNS = [
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer\s+)?[^\s'\",}]+"),
    re.compile(r"(?i)((?:api[-_]?key|token|secret|sig|key)=)[^&\s'\"]+"),
    re.compile(r"(/webhooks/\d+/)[\w.-]+"),
    re.compile(r"(/interactions/\d+/)[\w.-]+"),
    re.compile(r"(/callbacks/[\w-]+/[\w-]+/)[\w-]+"),
]
REDACTED = "[redacted]"


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        for secret in secrets:
            if secret and len(secret) >= 4 and secret not in self._secrets:
                self._secrets.append(secret)
        self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text


redactor = Redactor()


class RedactingFilter(logging.Filter):
    """Formats the message once, redacts it, and freezes it on the record (args cleared)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not kill logging
            message = str(record.msg)
        record.msg = redactor(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redactor(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redactor(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = redactor(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, fmt: str, secrets: Iterable[str]) -> None:
    redactor.add(*secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # discord.py's HTTP layer logs at DEBUG with routes that include webhook tokens: the filter covers it,
    # but keep its chatter down unless asked for.
    logging.getLogger("discord").setLevel(max(logging.getLevelName(level), logging.INFO))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # aiosqlite logs every operation at DEBUG with its arguments: job rows, interaction tokens included.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
