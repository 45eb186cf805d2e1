"""Whether a track may be played in a territory: the one rights rule, pure and without I/O.

A track is licensed in a territory when its territory list names it (no list means worldwide) and
no takedown applies to it; a takedown names one territory, or none for a withdrawal everywhere.
"""

from typing import Final

WORLDWIDE: Final = None
"""The territory list of a track licensed everywhere."""

GLOBAL: Final = None
"""The territory of a takedown that withdraws a track everywhere."""

WITHDRAWN: Final = "withdrawn"
TAKEN_DOWN: Final = "taken_down"
NOT_LICENSED: Final = "not_licensed"
LICENSED_WORLDWIDE: Final = "worldwide"
LICENSED: Final = "licensed"


def normalise_territory(code: str) -> str:
    """An ISO 3166-1 alpha-2 code in upper case; ValueError for anything but two ASCII letters."""
    if len(code) == 2 and code.isascii() and code.isalpha():
        return code.upper()
    raise ValueError(f"territory {code!r} is not a two-letter ISO 3166-1 code such as 'DE'")


def decide(
    territories: frozenset[str] | None, takedowns: frozenset[str | None], territory: str
) -> tuple[bool, str]:
    """Whether the track is licensed in ``territory``, and the reason as a short stable code.

    The codes, in the order they are checked: ``withdrawn`` (a global takedown),
    ``taken_down`` (a takedown in this territory), ``not_licensed`` (the list does not name it),
    ``worldwide`` or ``licensed``. ``territories`` and ``takedowns`` hold normalised codes.
    """
    code = normalise_territory(territory)
    if GLOBAL in takedowns:
        return False, WITHDRAWN
    if code in takedowns:
        return False, TAKEN_DOWN
    if territories is WORLDWIDE:
        return True, LICENSED_WORLDWIDE
    if code not in territories:
        return False, NOT_LICENSED
    return True, LICENSED


def is_licensed(
    territories: frozenset[str] | None, takedowns: frozenset[str | None], territory: str
) -> bool:
    """Whether the track may be played in ``territory`` (any case); see ``decide``."""
    return decide(territories, takedowns, territory)[0]
