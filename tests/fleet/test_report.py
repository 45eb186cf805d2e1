"""What ``fleet up`` and ``fleet status`` print."""

import json
from pathlib import Path

from fleet.report import status_json, status_text, up_json, up_text
from fleet.state import Record, StateFolder
from fleet.up import ServiceStatus, UpResult

STATE = StateFolder(Path("data/fleet"))
SERVICES = (
    Record("origin-1", "origin", "http://127.0.0.1:8080", "h", 100, 1, "data/fleet/logs/o.log"),
    Record("eu-west-1", "edge", "http://127.0.0.1:8081", "h", 101, 1, "l", "eu-west"),
    Record("locator", "locator", "http://127.0.0.1:8070", "h", 102, 1, "l"),
)


def test_up_shows_each_service_the_new_key_once_and_the_next_commands():
    text = up_text(UpResult(STATE, SERVICES, "cdz_secret", "also in x"), Path("data/fleet"))
    assert text.count("cdz_secret") == 1
    assert "eu-west-1  http://127.0.0.1:8081  pid 101  eu-west" in text
    assert "cadenza play TRACK_ID --locator http://127.0.0.1:8070" in text
    assert "--origin http://127.0.0.1:8080 --label lab" in text
    assert "  cadenza fleet down\n" in text + "\n"  # the default state folder is not repeated


def test_up_without_a_new_key_says_where_it_is_and_names_its_state_folder():
    result = UpResult(StateFolder(Path("/tmp/f")), SERVICES, None, "in /tmp/f/label.env")
    text = up_text(result, Path("/tmp/f"))
    assert "cdz_" not in text and "Label 'lab': in /tmp/f/label.env." in text
    assert "cadenza fleet status --state /tmp/f" in text
    doc = json.loads(up_json(result))
    assert doc["label"] == {"name": "lab", "api_key": None, "file": "/tmp/f/label.env"}
    assert [s["pid"] for s in doc["services"]] == [100, 101, 102]


def test_status_marks_what_is_down_or_whose_process_is_gone():
    rows = [
        ServiceStatus("origin-1", "origin", "http://o", 100, True, True),
        ServiceStatus("eu-west-1", "edge", "http://e", 101, False, True, "", "eu-west", 0.75),
        ServiceStatus("locator", "locator", "http://l", None, None, False, "refused"),
    ]
    text = status_text(rows)
    lines = text.splitlines()
    assert lines[0].startswith("up ")
    assert lines[1].startswith("DOWN") and "pid 101 gone" in lines[1]
    assert "hit ratio 75%" in lines[1]
    assert lines[2].startswith("DOWN") and "refused" in lines[2]
    assert lines[-1] == "1 of 3 services up"
    doc = json.loads(status_json(rows))
    assert doc["up"] is False
    assert [s["ok"] for s in doc["services"]] == [True, False, False]
