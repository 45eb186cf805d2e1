"""The token format and its checks: what a token grants, and every way a request can fail it."""

import argparse
import base64
import hashlib
import hmac
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.errors import InputError
from cadenza.tokens import (
    MAX_TOKEN_LENGTH,
    TokenClaims,
    TokenError,
    join_token_path,
    new_secret,
    sign,
    split_token_path,
    verify,
)

SECRET = b"cadenza-test-secret-0123456789ab"
OTHER_SECRET = b"cadenza-other-secret-0123456789a"
KEYS = {"k1": SECRET}
TRACK = "0123456789abcdef"
ACL = f"/tracks/{TRACK}/"
SEGMENT = f"{ACL}v0123456789ab/aac_96/seg_00001.m4s"
EXPIRES = 1_767_225_600
CLAIMS = TokenClaims(acl=ACL, expires=EXPIRES, kid="k1", territory="SE")
NOW = EXPIRES - 60.0
PATH_SAFE = set(string.ascii_letters + string.digits + "_.~-")


def _reason(token: str, path: str = SEGMENT, now: float = NOW, keys=KEYS, **kw) -> str:
    with pytest.raises(TokenError) as caught:
        verify(token, keys, path, now, **kw)
    assert caught.value.status == 403
    return caught.value.reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(payload: str, secret: bytes = SECRET) -> str:
    """A token for any payload text, signed as the module docstring describes."""
    encoded = _b64(payload.encode())
    mac = hmac.new(secret, encoded.encode(), hashlib.sha256).digest()[:18]
    return f"{encoded}.{_b64(mac)}"


# Round trip and the documented format


def test_sign_then_verify_returns_the_claims() -> None:
    token = sign(CLAIMS, SECRET)
    assert verify(token, KEYS, SEGMENT, NOW) == CLAIMS
    assert verify(token, KEYS, f"{ACL}master.m3u8", NOW) == CLAIMS


def test_docstring_example_is_the_format() -> None:
    claims = TokenClaims(acl=ACL, expires=EXPIRES, kid="k1", territory="SE")
    token = sign(claims, b"cadenza-example-secret-0123456789")
    assert token == (
        "djF8azF8MTc2NzIyNTYwMHxTRXwvdHJhY2tzLzAxMjM0NTY3ODlhYmNkZWYv.1Vs8XejhBh-PwjCARHbFG4KC"
    )
    assert token == _forge(f"v1|k1|{EXPIRES}|SE|{ACL}", b"cadenza-example-secret-0123456789")


def test_a_forged_token_in_the_documented_format_verifies() -> None:
    assert verify(_forge(f"v1|k1|{EXPIRES}|SE|{ACL}"), KEYS, SEGMENT, NOW) == CLAIMS


def test_a_listener_rides_as_an_optional_sixth_field() -> None:
    claims = TokenClaims(acl=ACL, expires=EXPIRES, kid="k1", territory="SE", listener="alice_01")
    token = sign(claims, SECRET)
    assert token == _forge(f"v1|k1|{EXPIRES}|SE|{ACL}|alice_01")
    assert verify(token, KEYS, SEGMENT, NOW) == claims
    assert verify(sign(CLAIMS, SECRET), KEYS, SEGMENT, NOW).listener == ""  # anonymous


def test_token_error_is_an_input_error_answered_with_403() -> None:
    error = TokenError("expired", "expired at 0")
    assert isinstance(error, InputError)
    assert error.status == 403
    assert error.reason == "expired"
    assert "expired at 0" in str(error)


# Tampering


def test_changing_any_signature_character_is_a_bad_signature() -> None:
    token = sign(CLAIMS, SECRET)
    start = token.index(".") + 1
    for i in range(start, len(token)):
        for c in "AQgw_-9":
            if c != token[i]:
                assert _reason(token[:i] + c + token[i + 1 :]) == "bad_signature"


def test_changing_any_payload_character_fails() -> None:
    token = sign(CLAIMS, SECRET)
    for i in range(token.index(".")):
        for c in "AQgw_-9":
            if c != token[i]:
                tampered = token[:i] + c + token[i + 1 :]
                assert _reason(tampered) in {"bad_signature", "malformed", "unknown_key"}


def test_flipping_any_payload_byte_fails() -> None:
    payload_b64, mac = sign(CLAIMS, SECRET).split(".")
    payload = base64.urlsafe_b64decode(payload_b64 + "==")
    keys = {"k1": SECRET, "k0": SECRET, "k3": SECRET}  # kids one bit away from "k1"
    for i in range(len(payload)):
        for bit in range(8):
            flipped = bytearray(payload)
            flipped[i] ^= 1 << bit
            token = f"{_b64(bytes(flipped))}.{mac}"
            assert _reason(token, keys=keys) in {"bad_signature", "malformed", "unknown_key"}


def test_a_token_signed_with_another_secret_is_a_bad_signature() -> None:
    assert _reason(sign(CLAIMS, OTHER_SECRET)) == "bad_signature"


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "abc",
        "abc.",
        ".AAAAAAAAAAAAAAAAAAAAAAAA",
        "abc.AAAAAAAAAAAAAAAAAAAAAAA",  # signature one character short
        "abc.AAAAAAAAAAAAAAAAAAAAAAAAA",  # one character long
        "abc.def.AAAAAAAAAAAAAAAAAAAAAAAA",
        "abc=.AAAAAAAAAAAAAAAAAAAAAAAA",
        "a/c.AAAAAAAAAAAAAAAAAAAAAAAA",
        "a+c.AAAAAAAAAAAAAAAAAAAAAAAA",
        "a c.AAAAAAAAAAAAAAAAAAAAAAAA",
        "abcde.AAAAAAAAAAAAAAAAAAAAAAAA",  # 5 base64 characters cannot be decoded
        "//8.AAAAAAAAAAAAAAAAAAAAAAAA",
        "_-8.AAAAAAAAAAAAAAAAAAAAAAAA",  # not ASCII once decoded
        "é.AAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_tokens_of_the_wrong_form_are_malformed(token: str) -> None:
    assert _reason(token) == "malformed"


def test_overlong_tokens_are_rejected_before_anything_else() -> None:
    token = sign(CLAIMS, SECRET)
    payload, mac = token.split(".")
    padded = "A" * (MAX_TOKEN_LENGTH - len(token) + 1) + payload
    assert _reason(f"{padded}.{mac}") == "malformed"
    assert _reason("A" * 10_000_000 + "." + mac) == "malformed"


@pytest.mark.parametrize(
    "payload",
    [
        f"v2|k1|{EXPIRES}|SE|{ACL}",
        f"v1|k1|{EXPIRES}|SE",
        f"v1|k1|{EXPIRES}|SE|{ACL}|",
        f"v1|k1|{EXPIRES}|SE|{ACL}|a b",
        f"v1|k1|{EXPIRES}|SE|{ACL}|{'a' * 65}",
        f"v1|k1|{EXPIRES}|SE|{ACL}|alice|extra",
        f"v1|k1|0{EXPIRES}|SE|{ACL}",
        f"v1|k1|-{EXPIRES}|SE|{ACL}",
        f"v1|k1|{EXPIRES}.5|SE|{ACL}",
        f"v1|k1|{2**40}|SE|{ACL}",
        f"v1|k1||SE|{ACL}",
        f"v1|k1|{EXPIRES}|se|{ACL}",
        f"v1|k1|{EXPIRES}|SWE|{ACL}",
        f"v1|k1|{EXPIRES}|SE|/tracks/{TRACK}",
        f"v1|k1|{EXPIRES}|SE|/tracks/../",
        f"v1|k1|{EXPIRES}|SE|//",
        f"v1|k1|{EXPIRES}|SE|tracks/",
    ],
)
def test_signed_payloads_that_break_the_format_are_malformed(payload: str) -> None:
    assert _reason(_forge(payload)) == "malformed"


# Keys


def test_an_unknown_key_id_is_reported_as_such() -> None:
    token = sign(TokenClaims(acl=ACL, expires=EXPIRES, kid="k9", territory="SE"), SECRET)
    assert _reason(token) == "unknown_key"


def test_keys_rotate_by_key_id() -> None:
    old = sign(CLAIMS, SECRET)
    new = sign(TokenClaims(acl=ACL, expires=EXPIRES, kid="k2", territory="SE"), OTHER_SECRET)
    both = {"k1": SECRET, "k2": OTHER_SECRET}
    assert verify(old, both, SEGMENT, NOW).kid == "k1"
    assert verify(new, both, SEGMENT, NOW).kid == "k2"
    retired = {"k2": OTHER_SECRET}
    assert _reason(old, keys=retired) == "unknown_key"
    assert verify(new, retired, SEGMENT, NOW).kid == "k2"


def test_a_key_id_cannot_borrow_another_key() -> None:
    forged = sign(TokenClaims(acl=ACL, expires=EXPIRES, kid="k2", territory="SE"), SECRET)
    assert _reason(forged, keys={"k1": SECRET, "k2": OTHER_SECRET}) == "bad_signature"


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="under 16 bytes"):
        sign(CLAIMS, b"short")
    with pytest.raises(ValueError, match="under 16 bytes"):
        verify(sign(CLAIMS, SECRET), {"k1": b""}, SEGMENT, NOW)


# Expiry


def test_expiry_boundary() -> None:
    token = sign(CLAIMS, SECRET)
    assert verify(token, KEYS, SEGMENT, EXPIRES - 0.001) == CLAIMS
    assert _reason(token, now=EXPIRES) == "expired"
    assert _reason(token, now=EXPIRES + 3600) == "expired"


def test_expiry_boundary_with_leeway() -> None:
    token = sign(CLAIMS, SECRET)
    assert verify(token, KEYS, SEGMENT, EXPIRES + 29.999, leeway=30) == CLAIMS
    assert _reason(token, now=EXPIRES + 30, leeway=30) == "expired"


@pytest.mark.parametrize(
    ("now", "leeway"),
    [(float("nan"), 0), (float("inf"), 0), (NOW, -1), (NOW, float("nan")), (NOW, float("inf"))],
)
def test_a_clock_or_leeway_that_is_not_a_number_is_an_error(now: float, leeway: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        verify(sign(CLAIMS, SECRET), KEYS, SEGMENT, now, leeway=leeway)


def test_the_signature_is_checked_before_the_expiry() -> None:
    expired_and_tampered = sign(CLAIMS, OTHER_SECRET)
    assert _reason(expired_and_tampered, now=EXPIRES + 1) == "bad_signature"


# ACL and request paths


@pytest.mark.parametrize(
    "path",
    [
        f"/tracks/{TRACK}x/master.m3u8",
        f"/tracks/{TRACK[:-1]}/master.m3u8",
        f"/tracks/{TRACK}",
        "/tracks/",
        "/",
        f"/TRACKS/{TRACK}/master.m3u8",
        f"/other/tracks/{TRACK}/master.m3u8",
    ],
)
def test_paths_outside_the_acl_are_refused(path: str) -> None:
    assert _reason(sign(CLAIMS, SECRET), path=path) == "wrong_acl"


def test_acl_prefixes_match_on_segment_boundaries() -> None:
    token = sign(TokenClaims(acl="/tracks/abc/", expires=EXPIRES, kid="k1", territory="SE"), SECRET)
    assert verify(token, KEYS, "/tracks/abc/master.m3u8", NOW).acl == "/tracks/abc/"
    assert _reason(token, path="/tracks/abcd/master.m3u8") == "wrong_acl"
    assert _reason(token, path="/tracks/abc.m3u8") == "wrong_acl"


def test_a_root_acl_grants_every_canonical_path() -> None:
    token = sign(TokenClaims(acl="/", expires=EXPIRES, kid="k1", territory="SE"), SECRET)
    assert verify(token, KEYS, "/anything/at/all", NOW).acl == "/"
    assert _reason(token, path="/a/../b") == "malformed"


@pytest.mark.parametrize(
    "path",
    [
        f"{ACL}../abcd0123456789ab/master.m3u8",
        f"{ACL}v0123456789ab/../../other/master.m3u8",
        f"{ACL}..",
        f"{ACL}.",
        f"{ACL}./master.m3u8",
        f"{ACL}%2e%2e/other/master.m3u8",
        f"{ACL}%2E%2E/other/master.m3u8",
        f"{ACL}.%2e/other/master.m3u8",
        f"{ACL}..%2fother%2fmaster.m3u8",
        f"{ACL}..%2Fother",
        f"{ACL}%252e%252e/other",
        f"{ACL}..\\other\\master.m3u8",
        f"{ACL}/master.m3u8",
        f"/tracks//{TRACK}/master.m3u8",
        f"//tracks/{TRACK}/master.m3u8",
        f"tracks/{TRACK}/master.m3u8",
        f"{ACL}master.m3u8?x=1",
        f"{ACL}master.m3u8#frag",
        f"{ACL}master.m3u8\x00.txt",
        f"{ACL}master .m3u8",
        f"{ACL}mäster.m3u8",
        f"{ACL}master.m3u8\n",
        f"{ACL}{'a' * 4096}",
        "",
    ],
)
def test_non_canonical_request_paths_are_refused(path: str) -> None:
    assert _reason(sign(CLAIMS, SECRET), path=path) in {"malformed", "wrong_acl"}


def test_claims_refuse_acls_that_would_not_match_safely() -> None:
    for acl in ["", "tracks/", f"/tracks/{TRACK}", "/tracks/../", "/tracks//", "/a b/", "/%2e/"]:
        with pytest.raises(ValueError, match="ACL"):
            TokenClaims(acl=acl, expires=EXPIRES, kid="k1", territory="SE")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("expires", -1),
        ("expires", 2**40),
        ("expires", True),
        ("kid", ""),
        ("kid", "k|1"),
        ("kid", "k" * 33),
        ("territory", "se"),
        ("territory", "S"),
        ("territory", "SE|"),
        ("listener", "a|b"),
        ("listener", "a" * 65),
        ("listener", "alice smith"),
    ],
)
def test_claims_refuse_fields_outside_the_format(field: str, value: object) -> None:
    fields: dict[str, object] = {"acl": ACL, "expires": EXPIRES, "kid": "k1", "territory": "SE"}
    with pytest.raises(ValueError):
        TokenClaims(**{**fields, field: value})  # type: ignore[arg-type]


# Token paths


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"/p/TOKEN{SEGMENT}", ("TOKEN", SEGMENT)),
        ("/p/a.b/", ("a.b", "/")),
        ("/p/TOKEN//x", ("TOKEN", "//x")),
        (SEGMENT, (None, SEGMENT)),
        ("/", (None, "/")),
        ("", (None, "")),
        ("/pp/TOKEN/x", (None, "/pp/TOKEN/x")),
        ("/P/TOKEN/x", (None, "/P/TOKEN/x")),
        ("/px", (None, "/px")),
        ("//p/TOKEN/x", (None, "//p/TOKEN/x")),
    ],
)
def test_split_token_path(raw: str, expected: tuple[str | None, str]) -> None:
    assert split_token_path(raw) == expected


@pytest.mark.parametrize(
    "raw", ["/p", "/p/", "/p//tracks/x", "/p/TOKEN", f"/p/{'A' * (MAX_TOKEN_LENGTH + 1)}/x"]
)
def test_malformed_token_paths(raw: str) -> None:
    with pytest.raises(TokenError) as caught:
        split_token_path(raw)
    assert caught.value.reason == "malformed"


def test_a_token_path_from_a_relative_uri_still_verifies() -> None:
    token = sign(CLAIMS, SECRET)
    master = join_token_path(token, f"{ACL}master.m3u8")
    media = master.rsplit("/", 1)[0] + "/v0123456789ab/aac_96/seg_00001.m4s"
    found, path = split_token_path(media)
    assert found == token
    assert verify(token, KEYS, path, NOW) == CLAIMS


# Properties

_segment = st.text(string.ascii_letters + string.digits + "._~-", min_size=1, max_size=20).filter(
    lambda s: s not in {".", ".."}
)
_claims = st.builds(
    TokenClaims,
    acl=st.lists(_segment, max_size=4).map(lambda parts: "/" + "".join(p + "/" for p in parts)),
    expires=st.integers(0, 2**40 - 1),
    kid=st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True),
    territory=st.from_regex(r"[A-Z]{2}", fullmatch=True),
    listener=st.one_of(st.just(""), st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)),
)
_secrets = st.binary(min_size=16, max_size=64)


@given(claims=_claims, secret=_secrets, leaf=_segment)
def test_any_claims_round_trip(claims: TokenClaims, secret: bytes, leaf: str) -> None:
    token = sign(claims, secret)
    assert len(token) <= MAX_TOKEN_LENGTH
    assert verify(token, {claims.kid: secret}, claims.acl + leaf, claims.expires - 1) == claims
    assert split_token_path(join_token_path(token, claims.acl + leaf)) == (token, claims.acl + leaf)


@given(claims=_claims, secret=_secrets)
def test_tokens_are_path_safe(claims: TokenClaims, secret: bytes) -> None:
    token = sign(claims, secret)
    assert set(token) <= PATH_SAFE
    assert token.count(".") == 1


@given(claims=_claims, secret=_secrets, data=st.data())
def test_any_single_character_change_fails(
    claims: TokenClaims, secret: bytes, data: st.DataObject
) -> None:
    token = sign(claims, secret)
    i = data.draw(st.integers(0, len(token) - 1), label="index")
    c = data.draw(st.characters().filter(lambda c: c != token[i]), label="character")
    with pytest.raises(TokenError):
        verify(token[:i] + c + token[i + 1 :], {claims.kid: secret}, claims.acl, claims.expires - 1)


@given(claims=_claims, secret=_secrets, data=st.data())
def test_dropping_any_character_fails(
    claims: TokenClaims, secret: bytes, data: st.DataObject
) -> None:
    token = sign(claims, secret)
    i = data.draw(st.integers(0, len(token) - 1), label="index")
    with pytest.raises(TokenError):
        verify(token[:i] + token[i + 1 :], {claims.kid: secret}, claims.acl, claims.expires - 1)


@given(granted=_segment, asked=_segment, leaf=_segment)
def test_an_acl_grants_exactly_its_own_subtree(granted: str, asked: str, leaf: str) -> None:
    token = sign(TokenClaims(f"/tracks/{granted}/", EXPIRES, "k1", "SE"), SECRET)
    path = f"/tracks/{asked}/{leaf}"
    if granted == asked:
        assert verify(token, KEYS, path, NOW).acl == f"/tracks/{granted}/"
    else:
        assert _reason(token, path=path) == "wrong_acl"


def test_a_new_secret_never_begins_with_a_dash_so_an_option_takes_it_as_its_value():
    # Once in 64 keys, a plain token_urlsafe began with "-" and "--operator-key KEY" failed.
    keys = [new_secret(16) for _ in range(2_000)]
    assert not [k for k in keys if k.startswith("-")]
    assert len(set(keys)) == len(keys) and {len(k) for k in keys} == {22}
    assert set("".join(keys)) <= set(string.ascii_letters + string.digits + "-_")
    parser = argparse.ArgumentParser()
    parser.add_argument("--operator-key")
    for key in keys:
        assert parser.parse_args(["--operator-key", key]).operator_key == key
