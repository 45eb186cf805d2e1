"""``cadenza plays`` as a process: the report's CSV and JSON, and usage errors."""

import csv
import io
import json

from plays import results
from tests.plays.events import TRACK, play
from tests.processes import cadenza


def test_help_names_the_consumers_and_the_report():
    done = cadenza("plays", "--help")
    assert done.returncode == 0
    for words in ("history", "streams", "popularity", "report", "30 s"):
        assert words in done.stdout, words


def test_the_report_lists_a_labels_streams_of_a_month(tmp_path):
    path = tmp_path / "results.sqlite3"
    db = results.connect(path)
    events = play(1.0) + play(2.0) + play(0.4) + play(1.0, territory="SE")
    results.apply(db, "streams", "streams", events, "1", labels={TRACK: "acme"})
    db.close()
    done = cadenza("plays", "report", "--db", path, "--label", "acme", "--month", "2026-11")
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows == [
        ["label", "day", "track_id", "territory", "streams"],
        ["acme", "2026-11-18", TRACK, "FR", "2"],
        ["acme", "2026-11-18", TRACK, "SE", "1"],
    ]
    done = cadenza("plays", "report", "--db", path, "--label", "acme", "--month", "2026-11",
                   "--json")  # fmt: skip
    doc = json.loads(done.stdout)
    assert (doc["label"], doc["month"], doc["streams"], len(doc["rows"])) == ("acme", "2026-11",
                                                                             3, 2)  # fmt: skip
    done = cadenza("plays", "report", "--db", path, "--label", "acme", "--month", "2026-10")
    assert done.stdout.splitlines() == ["label,day,track_id,territory,streams"]


def test_usage_errors_exit_2_naming_what_to_fix(tmp_path):
    cases = [
        (("report", "--db", tmp_path / "none", "--label", "a", "--month", "2026-11"), "consumer"),
        (("report", "--db", tmp_path / "none", "--label", "a", "--month", "11-2026"), "YYYY-MM"),
        (("consume", "streams", "--db", tmp_path / "r", "--log", f"sqlite:///{tmp_path}/l"),
         "--origin"),
        (("consume", "history", "--log", "kafka://x"), "sqlite:///PATH"),
    ]  # fmt: skip
    for args, message in cases:
        done = cadenza("plays", *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
