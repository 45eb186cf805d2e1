"""HTTP caching rules for a shared cache (RFC 9111), as the edge applies them to origin responses.

Pure: headers and times in, decisions out. The clock is always passed in.
"""

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass

from edge.fields import split_list

# Status codes a shared cache may store without explicit freshness (RFC 9110 15.1). Whether the
# edge also stores partial (206) answers is its own choice, made outside this module.
HEURISTICALLY_CACHEABLE = {200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501}


@dataclass(frozen=True)
class CacheControl:
    """The directives of a response's Cache-Control that a shared cache acts on."""

    no_store: bool = False
    no_cache: bool = False
    private: bool = False
    public: bool = False
    immutable: bool = False
    must_revalidate: bool = False
    max_age: int | None = None
    s_maxage: int | None = None
    stale_if_error: int | None = None
    stale_while_revalidate: int | None = None


def parse_cache_control(header: str | None) -> CacheControl:
    """Directives by name (case-insensitive); a malformed delta-seconds counts as 0 (stale)."""
    fields: dict[str, str | None] = {}
    for part in split_list(header or ""):
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if name and name not in fields:  # the first occurrence wins
            fields[name] = value.strip().strip('"') if sep else None
    return CacheControl(
        no_store="no-store" in fields,
        no_cache="no-cache" in fields,
        private="private" in fields,
        public="public" in fields,
        immutable="immutable" in fields,
        must_revalidate="must-revalidate" in fields or "proxy-revalidate" in fields,
        max_age=_seconds(fields, "max-age"),
        s_maxage=_seconds(fields, "s-maxage"),
        stale_if_error=_seconds(fields, "stale-if-error"),
        stale_while_revalidate=_seconds(fields, "stale-while-revalidate"),
    )


def _seconds(fields: Mapping[str, str | None], name: str) -> int | None:
    if name not in fields:
        return None
    value = fields[name] or ""
    return int(value) if value.isdigit() else 0


def storable(status: int, method: str, cc: CacheControl, *, authorized: bool = False) -> bool:
    """May a shared cache store this response (RFC 9111 3)?"""
    if method not in {"GET", "HEAD"} or cc.no_store or cc.private:
        return False
    if authorized and not (cc.public or cc.s_maxage is not None or cc.must_revalidate):
        return False
    explicit = cc.max_age is not None or cc.s_maxage is not None or cc.public
    return status in HEURISTICALLY_CACHEABLE or (explicit and status < 500)


def freshness_lifetime(cc: CacheControl, headers: Mapping[str, str]) -> float:
    """Seconds a stored response stays fresh (RFC 9111 4.2.1); no heuristic freshness."""
    if cc.no_cache:
        return 0.0
    if cc.s_maxage is not None:
        return float(cc.s_maxage)
    if cc.max_age is not None:
        return float(cc.max_age)
    expires, date = _date(headers.get("Expires")), _date(headers.get("Date"))
    if expires is not None:
        return max(0.0, expires - (date if date is not None else expires))
    return 0.0


def current_age(
    headers: Mapping[str, str], request_time: float, response_time: float, now: float
) -> float:
    """The age of a stored response at ``now`` (RFC 9111 4.2.3)."""
    date = _date(headers.get("Date"))
    apparent = max(0.0, response_time - date) if date is not None else 0.0
    raw_age = headers.get("Age", "").strip()
    age_value = float(raw_age) if raw_age.isdigit() else 0.0
    corrected = age_value + (response_time - request_time)
    return max(apparent, corrected) + (now - response_time)


@dataclass(frozen=True)
class Stored:
    """What the edge keeps beside a cached body to decide how to serve it later."""

    lifetime: float
    age_at_response: float  # current_age at response_time
    response_time: float
    cc: CacheControl

    def age(self, now: float) -> float:
        return self.age_at_response + max(0.0, now - self.response_time)

    def fresh(self, now: float) -> bool:
        return self.age(now) < self.lifetime

    def usable_on_error(self, now: float, grace: float) -> bool:
        """Serve stale when the origin fails: the response's stale-if-error, else ``grace``."""
        if self.cc.must_revalidate or self.cc.no_cache:
            return False
        allowed = self.cc.stale_if_error if self.cc.stale_if_error is not None else grace
        return self.age(now) < self.lifetime + allowed


def _date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None
