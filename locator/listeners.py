"""Who is listening: the listener id that a play's token carries (``TokenClaims.listener``).

The locator does not authenticate listeners; the service in front of it does. Two sources:

- ``listener_header``: a request header that a trusted front end sets (and strips from what
  clients send), such as ``X-Cadenza-Listener``. Only configure it when every request reaches
  the locator through that front end.
- ``listener_query``: ``?listener=ID`` on the play URL, for labs, demos and benchmarks, where
  anyone may claim to be anyone.

With neither, or when the request names none, the play is anonymous (an empty id): it plays,
and its events count for the track but no listener's history. A malformed id is a 400.
"""

from collections.abc import Mapping

from cadenza.errors import InputError
from cadenza.tokens import LISTENER


class ListenerError(InputError):
    status = 400


def listener_of(
    headers: Mapping[str, str], query: Mapping[str, str], *, header: str, from_query: bool
) -> str:
    """The request's listener id, "" when anonymous; ListenerError when malformed."""
    value = headers.get(header) if header else None
    source = f"the {header} header"
    if value is None and from_query:
        value, source = query.get("listener"), "the listener parameter"
    if value is None or value == "":
        return ""
    if not LISTENER.fullmatch(value):
        raise ListenerError(f"{source} {value[:80]!r} is not a listener id (1 to 64 of "
                            "[A-Za-z0-9_-])")  # fmt: skip
    return value
