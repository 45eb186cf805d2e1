"""Errors shared by every Cadenza component.

    CadenzaError                  anything Cadenza reports to a user as one line, no traceback
    ├── ConfigError               a bad settings file, key or flag (exit code 2)
    └── InputError                one input (a master, a request) is unusable; the rest carry on

Each package may subclass these in its own ``errors.py``.
"""


class CadenzaError(Exception):
    """An expected failure with a message meant for people: what, with which input, what to do."""


class ConfigError(CadenzaError):
    """Settings that cannot be used; the command stops before doing any work."""

    exit_code = 2


class InputError(CadenzaError):
    """One input cannot be processed; other inputs of the same batch are unaffected."""
