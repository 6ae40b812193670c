"""Signed, expiring links to a result's original file on Easel's own web server.

A result shrunk or re-encoded to fit Discord's upload limit gets one (when PUBLIC_URL is set). The link is
`/results/<job>/<position>?e=<expiry>&s=<signature>`, the signature an HMAC-SHA256 over the three, keyed with
RESULT_LINK_SECRET or a key made once and kept in the database. The web server checks it, the expiry, and
that the job's file is still kept.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3

from bot.storage.database import Database

SECRET_NAME = "result_links"


def _message(job_id: str, position: int, expires: int) -> bytes:
    return f"{job_id}:{position}:{expires}".encode()


def sign(key: bytes, job_id: str, position: int, expires: int) -> str:
    return hmac.new(key, _message(job_id, position, expires), hashlib.sha256).hexdigest()


def valid(key: bytes, job_id: str, position: int, expires: int, signature: str, now: float) -> bool:
    """Signed with this key, and not expired."""
    expected = sign(key, job_id, position, expires)
    return hmac.compare_digest(expected, signature) and now < expires


def link(public_url: str, key: bytes, job_id: str, position: int, expires: int) -> str:
    base = public_url.rstrip("/")
    return f"{base}/results/{job_id}/{position}?e={expires}&s={sign(key, job_id, position, expires)}"


async def signing_key(db: Database, configured: str | None) -> bytes:
    """The configured secret, else the one kept in the database (made on first use, in one transaction)."""
    if configured:
        return configured.encode()

    def get_or_make(conn: sqlite3.Connection) -> str:
        row = conn.execute("SELECT value FROM app_secrets WHERE name = ?", (SECRET_NAME,)).fetchone()
        if row is not None:
            return str(row[0])
        value = secrets.token_urlsafe(32)
        conn.execute("INSERT INTO app_secrets (name, value) VALUES (?, ?)", (SECRET_NAME, value))
        return value

    return (await db.write(get_or_make)).encode()
