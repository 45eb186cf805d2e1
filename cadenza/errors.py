"""Errors shared by every Cadenza component.

    CadenzaError        500  anything Cadenza reports to a user as one line, no traceback
    ├── ConfigError          a bad settings file, key or flag (exit code 2)
    ├── InputError      400  one input (a master, a request) is unusable; the rest carry on
    └── HttpError       any  a refusal whose status is chosen where it is raised

Every error carries ``status``, the HTTP status it is answered with when it reaches a client
(h11's ``error_status_hint``), so one middleware (``cadenza.web.json_errors``) renders them all
as ``{"error": message, **details()}``. The message is public: say what was wrong and what to
do, never a secret. Each package may subclass these in its own ``errors.py``.
"""

from typing import Any


class CadenzaError(Exception):
    """An expected failure with a message meant for people: what, with which input, what to do."""

    status = 500

    def details(self) -> dict[str, Any]:
        """Fields of the JSON error body besides ``error``; none by default."""
        return {}


class ConfigError(CadenzaError):
    """Settings that cannot be used; the command stops before doing any work."""

    exit_code = 2


class InputError(CadenzaError):
    """One input cannot be processed; other inputs of the same batch are unaffected."""

    status = 400


class HttpError(CadenzaError):
    """A request answered with ``status`` and ``message``, decided where it is refused."""

    def __init__(self, status: int, message: str) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"an error status must be 4xx or 5xx, not {status}")
        super().__init__(message)
        self.status = status
