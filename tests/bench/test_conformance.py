"""``cadenza bench conformance``: its flags, the suite's scoring, and short real runs.

The real runs use a few tests of the suite (their client runs in seconds; the whole suite takes
about a minute) and the suite's npm dependencies that ``make setup`` installs under build/.
"""

import argparse
import json
from pathlib import Path

import pytest

from bench.conformance import (
    DEFAULT_SUITE,
    MODULES,
    Plan,
    edge_label,
    measure,
    modules_key,
    node_modules,
    parse_workers,
    run,
    score,
)
from cadenza.errors import ConfigError

# A few quick tests of the suite that nginx answers in different ways: a check (yes, and the
# dependency of most tests), an optimal pass, a required pass and a required fail (nginx reuses
# a response whose Age from the origin already exceeds its max-age).
SUBSET = ("freshness-none", "freshness-max-age", "freshness-max-age-0", "freshness-max-age-age")

needs_suite = pytest.mark.skipif(
    not (DEFAULT_SUITE / "package.json").is_file(), reason=f"no cache-tests at {DEFAULT_SUITE}"
)


@pytest.mark.parametrize(
    ("text", "counts"),
    [("default,1,2", (None, 1, 2)), ("2", (2,)), (" Default , 4", (None, 4)), ("none", ())],
)
def test_worker_lists(text, counts):
    assert parse_workers(text) == counts


@pytest.mark.parametrize("text", ["", "0", "1,1", "default,default", "two", "-1", "1000"])
def test_bad_worker_lists_are_refused_with_the_flag_named(text):
    with pytest.raises(ConfigError, match="--workers"):
        parse_workers(text)


def test_runs_are_named_by_their_workers():
    assert [edge_label(w) for w in (None, 1, 2)] == ["cadenza", "cadenza-w1", "cadenza-w2"]


def test_a_folder_that_is_not_the_suite_is_refused(tmp_path: Path):
    (tmp_path / "package.json").write_text("{}")
    plan = Plan(suite=tmp_path, workers=(), nginx=True, tests=(), timeout=60, install=False)
    with pytest.raises(ConfigError, match=r"--suite .*not a copy of http-tests/cache-tests"):
        measure(plan, tmp_path / "scratch")


def test_installed_dependencies_are_found_by_the_hash_of_package_json(tmp_path: Path):
    suite, cache = tmp_path / "suite", tmp_path / "cache"
    suite.mkdir()
    (suite / "package.json").write_text('{"dependencies": {"undici": "^7"}}')
    with pytest.raises(ConfigError, match="run 'make setup'"):
        node_modules(suite, cache, install=False)
    installed = cache / modules_key(suite) / "node_modules"
    installed.mkdir(parents=True)
    assert node_modules(suite, cache, install=False) == installed
    (suite / "package.json").write_text('{"dependencies": {"undici": "^8"}}')
    with pytest.raises(ConfigError):  # another package.json needs its own install
        node_modules(suite, cache, install=False)


@needs_suite
@pytest.mark.parametrize(("cache", "passes"), [("nginx", 158), ("trafficserver", 202)])
def test_scoring_the_published_results_gives_the_published_counts(tmp_path, cache, passes):
    published = json.loads((DEFAULT_SUITE / "results" / f"{cache}.json").read_text())
    scores = score(DEFAULT_SUITE, tmp_path / "results.json", published)
    assert sum(s.category == "pass" for s in scores.values()) == passes
    assert set(published) <= set(scores)


def _args(tmp_path: Path, **overrides) -> argparse.Namespace:
    args = {
        "suite": DEFAULT_SUITE,
        "workers": "none",
        "no_nginx": False,
        "tests": ",".join(SUBSET),
        "timeout": 60.0,
        "offline": True,  # tests reach only loopback; make setup installed the dependencies
        "sequential": False,
        "json": True,
        "out": tmp_path / "out",
    }
    return argparse.Namespace(**{**args, **overrides})


@needs_suite
def test_a_subset_through_nginx_is_scored_by_the_suite(tmp_path, capsys):
    assert run(_args(tmp_path)) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads((tmp_path / "out" / "conformance.json").read_text())
    assert report["setup"]["notes"] == []
    categories = {test_id: t["category"] for test_id, t in report["tests"]["nginx"].items()}
    assert categories == {
        "freshness-none": "yes",
        "freshness-max-age": "pass",
        "freshness-max-age-0": "pass",
        "freshness-max-age-age": "fail",
    }
    tally = report["tallies"]["nginx"]
    assert (tally["pass"], tally["yes"], tally["required_fails"], tally["tests"]) == (2, 1, 1, 4)
    assert "comes from cache" in report["tests"]["nginx"]["freshness-max-age-age"]["detail"]
    assert "targets" not in report  # no edge ran


@needs_suite
def test_the_edge_runs_at_each_worker_count_and_the_runs_are_compared(tmp_path, capsys):
    args = _args(tmp_path, workers="1,2", no_nginx=True, json=False, out=None, sequential=True)
    assert run(args) == 0
    text = capsys.readouterr().out
    assert "cadenza-w1" in text and "cadenza-w2" in text
    assert "Workers: " in text
    assert "Targets for cadenza-w1:" in text
    assert "more passes than nginx (no nginx run): not measured" in text


@needs_suite
def test_an_unknown_test_id_is_refused(tmp_path):
    plan = Plan(DEFAULT_SUITE, (), True, ("no-such-test",), 60, MODULES, install=False)
    with pytest.raises(ConfigError, match="--tests: the suite has no test no-such-test"):
        measure(plan, tmp_path)
