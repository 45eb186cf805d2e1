"""HTTP caching rules for a shared cache (RFC 9111), as the edge applies them.

Pure: header values and times in, decisions out; the clock is always passed in. Dates are parsed
strictly (RFC 9110 5.6.7: IMF-fixdate and the two obsolete forms, nothing else), delta-seconds
are clamped at 2^31 (RFC 9111 1.2.2), and a directive given twice counts by its first occurrence.
"""

import calendar
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from edge.fields import split_list

# Status codes a shared cache may store without explicit freshness (RFC 9110 15.1). The edge
# does not store partial (206) answers: it fetches whole objects and cuts ranges itself.
HEURISTICALLY_CACHEABLE = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
DELTA_MAX = 2**31  # RFC 9111 1.2.2: the value of a delta-seconds that overflows
HEURISTIC_FRACTION = 0.1  # of the time since Last-Modified (RFC 9111 4.2.2)
HEURISTIC_MAX = 86400.0  # a day, as Traffic Server caps it


@dataclass(frozen=True)
class CacheControl:
    """The directives of a Cache-Control field (response or request) that a shared cache acts on."""

    no_store: bool = False
    no_cache: bool = False
    private: bool = False
    public: bool = False
    immutable: bool = False
    must_revalidate: bool = False
    only_if_cached: bool = False
    max_age: int | None = None
    s_maxage: int | None = None
    stale_if_error: int | None = None
    stale_while_revalidate: int | None = None
    max_stale: int | None = None  # request only; DELTA_MAX when given without a value
    min_fresh: int | None = None  # request only
    no_cache_fields: tuple[str, ...] = ()  # no-cache="a, b": those fields need revalidation
    private_fields: tuple[str, ...] = ()  # private="a": a shared cache must not store them


def parse_cache_control(header: str | None) -> CacheControl:
    """Directives by name (case-insensitive); a malformed delta-seconds counts as 0 (stale)."""
    fields: dict[str, str | None] = {}
    for part in split_list(header or ""):
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if name and name not in fields:  # the first occurrence wins
            fields[name] = _unquoted(value.strip()) if sep else None
    return CacheControl(
        no_store="no-store" in fields,
        no_cache="no-cache" in fields and not fields["no-cache"],
        private="private" in fields and not fields["private"],
        public="public" in fields,
        immutable="immutable" in fields,
        must_revalidate="must-revalidate" in fields or "proxy-revalidate" in fields,
        only_if_cached="only-if-cached" in fields,
        max_age=_seconds(fields, "max-age"),
        s_maxage=_seconds(fields, "s-maxage"),
        stale_if_error=_seconds(fields, "stale-if-error"),
        stale_while_revalidate=_seconds(fields, "stale-while-revalidate"),
        max_stale=DELTA_MAX
        if fields.get("max-stale", "") is None
        else _seconds(fields, "max-stale"),
        min_fresh=_seconds(fields, "min-fresh"),
        no_cache_fields=_names(fields.get("no-cache")),
        private_fields=_names(fields.get("private")),
    )


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(n.strip().lower() for n in (value or "").split(",") if n.strip())


def _seconds(fields: Mapping[str, str | None], name: str) -> int | None:
    if name not in fields:
        return None
    value = fields[name] or ""
    return min(int(value), DELTA_MAX) if value.isascii() and value.isdigit() else 0


_SF_KEY = r"[a-z*][a-z0-9_\-.*]*"
_SF_BARE = (
    r'(?:-?\d{1,15}(?:\.\d{1,3})?|"(?:[^"\\]|\\.)*"|[A-Za-z*][\w!#$%&\'*+\-.^`|~:/]*'
    r"|\?[01]|:[A-Za-z0-9+/=]*:)"
)
_SF_MEMBER = re.compile(rf"({_SF_KEY})(?:=({_SF_BARE}))?(?:;{_SF_KEY}(?:={_SF_BARE})?)*")
_SF_INTEGER_DIRECTIVES = ("max-age", "s-maxage", "stale-if-error", "stale-while-revalidate")


def targeted_cache_control(value: str | None) -> str | None:
    """A CDN-Cache-Control value (RFC 9213) as directives, when it is a valid Structured Field
    dictionary whose delta-seconds are integers; None (ignore it, as the RFC asks) otherwise."""
    if value is None:
        return None
    directives = []
    for member in split_list(value):
        m = _SF_MEMBER.fullmatch(member)
        if m is None:
            return None
        key, item = m.groups()
        if key in _SF_INTEGER_DIRECTIVES and not (item or "").isdigit():
            return None
        directives.append(key if item is None else f"{key}={item}")
    return ", ".join(directives)


def request_directives(cache_control: str | None, pragma: str | None) -> CacheControl:
    """A request's directives; ``Pragma: no-cache`` counts without Cache-Control (RFC 9111 5.4)."""
    if cache_control is None and pragma and "no-cache" in pragma.lower():
        return CacheControl(no_cache=True)
    return parse_cache_control(cache_control)


def storable(
    status: int, method: str, cc: CacheControl, *, authorized: bool = False,
    has_expires: bool = False, request: CacheControl = CacheControl(),
) -> bool:  # fmt: skip
    """May a shared cache store this response to this request (RFC 9111 3)?"""
    if method != "GET" or cc.no_store or cc.private or request.no_store:
        return False
    if status in (206, 304) or status < 200:
        return False
    if authorized and not (cc.public or cc.s_maxage is not None or cc.must_revalidate):
        return False
    explicit = has_expires or cc.max_age is not None or cc.s_maxage is not None or cc.public
    return explicit or status in HEURISTICALLY_CACHEABLE


def freshness_lifetime(
    cc: CacheControl, headers: Mapping[str, str], status: int = 200, response_time: float = 0.0
) -> float:
    """Seconds a stored response stays fresh (RFC 9111 4.2.1), heuristics included (4.2.2).

    ``headers`` maps lower-case field names to their combined values.
    """
    if cc.s_maxage is not None:
        return float(cc.s_maxage)
    if cc.max_age is not None:
        return float(cc.max_age)
    date = parse_http_date(headers.get("date"))
    base = date if date is not None else response_time
    if "expires" in headers:
        expires = parse_http_date(headers["expires"])
        return 0.0 if expires is None else max(0.0, expires - base)  # invalid: already expired
    last_modified = parse_http_date(headers.get("last-modified"))
    if last_modified is not None and (status in HEURISTICALLY_CACHEABLE or cc.public):
        return min(HEURISTIC_MAX, max(0.0, (base - last_modified) * HEURISTIC_FRACTION))
    return 0.0


def current_age(
    headers: Mapping[str, str], request_time: float, response_time: float, now: float
) -> float:
    """The age of a response at ``now`` (RFC 9111 4.2.3); ``headers`` as for freshness_lifetime."""
    date = parse_http_date(headers.get("date"))
    apparent = max(0.0, response_time - date) if date is not None else 0.0
    corrected = parse_age(headers.get("age")) + (response_time - request_time)
    return max(apparent, corrected) + max(0.0, now - response_time)


def parse_age(value: str | None) -> float:
    """The Age field's delta-seconds (the first, when several); 0 when absent or invalid."""
    first = (value or "").split(",", 1)[0].strip()
    return float(min(int(first), DELTA_MAX)) if first.isascii() and first.isdigit() else 0.0


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
        return self.age(now) < self.lifetime and not self.cc.no_cache

    def fresh_until(self) -> float:
        """When the response stops being fresh, its age reaching its lifetime (to the rounding
        of a float: ``fresh`` decides)."""
        if self.cc.no_cache or self.age_at_response >= self.lifetime:
            return -math.inf
        return self.response_time + self.lifetime - self.age_at_response

    def usable_on_error(
        self, now: float, grace: float, request: CacheControl = CacheControl()
    ) -> bool:
        """Serve stale on upstream errors: stale-if-error (response or request), or ``grace``."""
        if self.cc.must_revalidate or self.cc.no_cache or self.cc.s_maxage is not None:
            return False  # s-maxage implies proxy-revalidate (RFC 9111 5.2.2.10)
        allowed = max(
            grace,
            self.cc.stale_if_error or 0,
            request.stale_if_error or 0,
        )
        return self.age(now) < self.lifetime + allowed

    def satisfies(self, request: CacheControl, now: float) -> bool:
        """Fresh enough for this request's max-age, min-fresh and max-stale (RFC 9111 5.2.1)?"""
        if self.cc.no_cache or request.no_cache:
            return False
        age = self.age(now)
        if request.max_age is not None and age > request.max_age:
            return False
        if request.min_fresh is not None and self.lifetime - age < request.min_fresh:
            return False
        if age < self.lifetime:
            return True
        revalidate = self.cc.must_revalidate or self.cc.s_maxage is not None
        return (
            request.max_stale is not None
            and not revalidate
            and age - self.lifetime <= request.max_stale
        )


_MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_LONG_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_IMF = re.compile(r"([A-Z][a-z]{2}), (\d\d) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d):(\d\d) GMT")
_RFC850 = re.compile(r"([A-Z][a-z]{5,8}), (\d\d)-([A-Z][a-z]{2})-(\d\d) (\d\d):(\d\d):(\d\d) GMT")
_ASCTIME = re.compile(r"([A-Z][a-z]{2}) ([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\d{4})")


def parse_http_date(value: str | None) -> float | None:
    """Seconds since the epoch of an HTTP-date (RFC 9110 5.6.7), or None when it is not one."""
    if not value:
        return None
    text = value.strip()
    if m := _IMF.fullmatch(text):
        day, dd, mon, yyyy, hh, mm, ss = m.groups()
        valid_day = day in _DAYS
    elif m := _RFC850.fullmatch(text):
        day, dd, mon, yy, hh, mm, ss = m.groups()
        valid_day = day in _LONG_DAYS
        yyyy = str(2000 + int(yy) if int(yy) < 70 else 1900 + int(yy))
    elif m := _ASCTIME.fullmatch(text):
        day, mon, dd, hh, mm, ss, yyyy = m.groups()
        valid_day = day in _DAYS
    else:
        return None
    month = _MONTHS.get(mon)
    if not valid_day or month is None:
        return None
    fields = (int(yyyy), month, int(dd), int(hh), int(mm), int(ss))
    if not (1 <= fields[2] <= 31 and fields[3] < 24 and fields[4] < 60 and fields[5] <= 60):
        return None
    return float(calendar.timegm((*fields, 0, 0, 0)))
