"""Access log records: JSON-ready, CMCD included, tokens never logged."""

import json

from edge.access_log import access_record

PATH = "/tracks/0123456789abcdef/v0123456789ab/aac_96/seg_00001.m4s"


def test_a_signed_request_is_logged_without_its_token():
    record = access_record(
        "GET", f"/p/SECRETTOKEN.abc{PATH}?CMCD=br%3D96", 200, 1234, 0.0021, "HIT", {"br": 96}
    )
    assert record == {
        "method": "GET",
        "path": PATH,
        "signed": True,
        "status": 200,
        "bytes": 1234,
        "ms": 2.1,
        "cache": "HIT",
        "cmcd": {"br": 96},
    }
    assert "SECRET" not in json.dumps(record)


def test_unsigned_and_malformed_paths():
    assert access_record("HEAD", PATH, 404, 0, 0.0, None, {})["signed"] is False
    assert "cmcd" not in access_record("HEAD", PATH, 404, 0, 0.0, None, {})
    malformed = access_record("GET", "/p/", 403, 10, 0.001, None, {})
    assert malformed["path"] == "/p/..." and malformed["signed"] is True
