"""Labels and their API keys: only a key's SHA-256 is stored, compared in constant time."""

import hashlib
import hmac
import re

from origin.database import Connection
from origin.errors import LabelExists

KEY_PREFIX = "cdz_"
LABEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def add_label(db: Connection, now: float, name: str, digest: str) -> None:
    if db.execute("SELECT 1 AS found FROM labels WHERE name = ?", (name,)).fetchone():
        raise LabelExists(f"label {name!r} already exists; choose another name")
    db.execute("INSERT INTO labels VALUES (?, ?, ?)", (name, digest, now))


def label_for_key(db: Connection, digest: str) -> str | None:
    row = db.execute("SELECT name, key_sha256 FROM labels WHERE key_sha256 = ?", (digest,))
    found = row.fetchone()
    if found is None or not hmac.compare_digest(found["key_sha256"], digest):
        return None
    return str(found["name"])


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()
