"""Named loggers for each component, and no secret in any log line, whoever logs it.

Path tokens, token secrets and API keys are credentials for as long as they live, and log files
outlive them in places with weaker access rules. Libraries log what they were sent (aiohttp's
parse errors quote the offending request line or header), so redaction cannot be left to each
call site: every log record is cleaned as it is made, its message and its traceback alike.
"""

import logging
import re
import sys
import time
import traceback
from collections.abc import Iterable
from types import TracebackType
from typing import Any

ROOT = "cadenza"
REDACTED = "[redacted]"

# /p/{token}/...: the path token, up to the next slash, quote, space or escape.
_PATH_TOKEN = re.compile(r"(/p/)[^/\\\s'\"]+")
# Authorization: Bearer <key>, and label API keys (origin.catalog.KEY_PREFIX) wherever they are.
# A placeholder such as "Bearer <api key>" in a help text is not a credential: it stays readable.
_BEARER = re.compile(r"(?i)(bearer\s+)(?!<[a-z ]+>)[^\s'\",\\]+")
_API_KEY = re.compile(r"cdz_[A-Za-z0-9_-]+")
_secrets: set[str] = set()


def get_logger(component: str) -> logging.Logger:
    return logging.getLogger(f"{ROOT}.{component}")


def configure(verbosity: int) -> None:
    """Log to stderr: warnings by default, info with -v, debug with -vv; secrets redacted."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    # Every line starts with its UTC time (ISO 8601, milliseconds), for logs read away from
    # the journal that would otherwise add it.
    formatter = logging.Formatter(
        "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler])
    redact_records()


def hide(secrets: Iterable[str | bytes]) -> None:
    """Known secrets of this process (token keys, operator and storage keys): never logged."""
    for secret in secrets:
        text = secret.decode(errors="replace") if isinstance(secret, bytes) else secret
        if len(text) >= 4:  # shorter "secrets" would redact ordinary words
            _secrets.add(text)


def redact(text: str) -> str:
    """``text`` without path tokens, bearer credentials, API keys or known secrets."""
    text = _PATH_TOKEN.sub(rf"\1{REDACTED}", text)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    text = _API_KEY.sub(REDACTED, text)
    for secret in _secrets:
        text = text.replace(secret, REDACTED)
    return text


def redact_records() -> None:
    """Clean every log record as it is made, and tracebacks that reach stderr unlogged."""
    make = logging.getLogRecordFactory()
    if getattr(make, "redacts", False):
        return

    def clean(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it; keep its text clean
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_text = record.exc_text.rstrip("\n")
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    clean.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(clean)
    sys.excepthook = _clean_excepthook


def _clean_excepthook(
    kind: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, error, tb))))
