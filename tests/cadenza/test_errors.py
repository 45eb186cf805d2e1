"""The error base: every error carries the HTTP status it is answered with."""

import pytest

from cadenza.errors import CadenzaError, ConfigError, HttpError, InputError
from cadenza.tokens import TokenError
from locator.geo import LocationError
from origin.errors import Conflict, ObjectNotFound, OriginError


def test_each_kind_of_error_carries_its_status():
    assert CadenzaError("x").status == 500
    assert ConfigError("x").status == 500 and ConfigError.exit_code == 2
    assert InputError("x").status == 400
    assert HttpError(451, "not here").status == 451
    assert LocationError("lat", "x").status == 400
    assert TokenError("expired", "x").status == 403
    assert (OriginError("x").status, ObjectNotFound("x").status) == (500, 404)


def test_an_error_may_add_fields_to_its_body():
    assert CadenzaError("x").details() == {}
    assert Conflict("objects missing", ["a.m4s"]).details() == {"missing": ["a.m4s"]}


@pytest.mark.parametrize("status", [200, 302, 399, 600, -1])
def test_an_http_error_is_a_4xx_or_5xx(status):
    with pytest.raises(ValueError, match="4xx or 5xx"):
        HttpError(status, "x")
