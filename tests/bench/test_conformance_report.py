"""The conformance report's pure part: the suite's output parsed, tallied, compared, printed."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.conformance_report import (
    CATEGORIES,
    MAX_REQUIRED_FAILS,
    Score,
    SuiteOutputError,
    differences,
    parse_results,
    parse_scores,
    render,
    summary,
    tally,
    targets,
)

CLIENT_OUTPUT = """\
{
  "freshness-max-age": true,
  "freshness-max-age-age": ["Assertion", "Response 2 Age header not present."],
  "cc-resp-no-store": ["Setup", "PUT config resulted in 405 Method Not Allowed"]
}
"""

categories = st.sampled_from([*CATEGORIES, "something_new"])
kinds = st.sampled_from(["required", "optimal", "check"])
scores = st.builds(Score, category=categories, kind=kinds, group=st.just("g"))
runs = st.dictionaries(st.text(min_size=1, max_size=8), scores, max_size=30)


def test_the_clients_results_are_read_as_it_prints_them():
    results = parse_results(CLIENT_OUTPUT, "client")
    assert results["freshness-max-age"] is True
    assert results["freshness-max-age-age"] == ["Assertion", "Response 2 Age header not present."]


def test_a_log_line_before_the_json_document_is_skipped():
    assert parse_results("Running all tests\n" + CLIENT_OUTPUT, "client")["freshness-max-age"]


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[true]", '{"a": false}', '{"a": ["Assertion"]}', '{"a": [1, 2]}', "{"],
)
def test_output_the_suite_does_not_print_is_an_error_naming_its_source(text):
    with pytest.raises(SuiteOutputError, match="the suite's client"):
        parse_results(text, "the suite's client")


def test_scores_are_read_with_category_kind_and_group():
    text = json.dumps({"t": {"category": "pass", "kind": "optimal", "group": "cc-freshness"}})
    assert parse_scores(text, "scoring") == {"t": Score("pass", "optimal", "cc-freshness")}


@pytest.mark.parametrize(
    "entry", [None, "pass", {"category": "pass"}, {"category": "", "kind": "k", "group": "g"}]
)
def test_a_malformed_score_is_an_error(entry):
    with pytest.raises(SuiteOutputError, match="score of 't'"):
        parse_scores(json.dumps({"t": entry}), "scoring")


def test_tally_counts_categories_in_order_and_the_required_figures():
    counts = tally(
        {
            "a": Score("pass", "required", "g"),
            "b": Score("fail", "required", "g"),
            "c": Score("optional_fail", "optimal", "g"),
            "d": Score("setup_fail", "required", "g"),
            "e": Score("dependency_fail", "check", "g"),
            "f": Score("brand_new", "required", "g"),
        }
    )
    assert list(counts)[: len(CATEGORIES)] == list(CATEGORIES)
    assert counts["pass"] == counts["fail"] == counts["optional_fail"] == 1
    assert counts["brand_new"] == 1
    assert counts["required_fails"] == 1
    assert counts["required_not_run"] == 1  # the check's dependency_fail is not a required one
    assert counts["tests"] == 6


@given(runs)
def test_every_test_is_counted_once(run):
    counts = tally(run)
    by_category = {k: v for k, v in counts.items() if k not in ("required_fails", "tests")}
    by_category.pop("required_not_run")
    assert sum(by_category.values()) == counts["tests"] == len(run)
    assert counts["required_fails"] == counts["fail"]
    assert counts["required_not_run"] <= counts["tests"]


@given(runs, st.integers(min_value=1, max_value=3))
def test_identical_runs_have_no_differences(run, copies):
    assert differences({f"run{i}": run for i in range(copies)}) == {}


@given(runs, runs)
def test_differences_are_exactly_the_tests_whose_category_differs(first, second):
    found = differences({"one": first, "two": second})
    for test_id in first.keys() | second.keys():
        a = first[test_id].category if test_id in first else "missing"
        b = second[test_id].category if test_id in second else "missing"
        assert (test_id in found) == (a != b)
        if a != b:
            assert found[test_id] == {"one": a, "two": b}


def test_targets_need_more_passes_than_nginx_and_few_required_fails():
    edge = {"pass": 160, "required_fails": MAX_REQUIRED_FAILS}
    assert targets(edge, {"pass": 151})["met"] == {
        "more_passes_than_nginx": True,
        "required_fails_at_most": True,
    }
    worse = {"pass": 151, "required_fails": MAX_REQUIRED_FAILS + 1}
    assert targets(worse, {"pass": 151})["met"] == {
        "more_passes_than_nginx": False,
        "required_fails_at_most": False,
    }
    assert targets(edge, None)["met"]["more_passes_than_nginx"] is None


def _report():
    edge = {"a": Score("pass", "required", "g"), "b": Score("setup_fail", "required", "g")}
    edge_one = {"a": Score("fail", "required", "g"), "b": Score("setup_fail", "required", "g")}
    nginx = {"a": Score("pass", "required", "g"), "b": Score("fail", "required", "g")}
    results = {
        "cadenza": {"a": True, "b": ["Setup", "PUT config resulted in 405"]},
        "cadenza-w1": {"a": ["Assertion", "Response 2 comes from cache"], "b": ["Setup", "x"]},
        "nginx": {"a": True},
    }
    note = "nginx: the suite's client did not finish within --timeout; no results."
    setup = {"tests": 2, "seconds": 3.2, "edge_run": "cadenza", "notes": [note]}
    runs = {"cadenza": edge, "cadenza-w1": edge_one, "nginx": nginx}
    return summary(setup, runs, results, ["cadenza", "cadenza-w1"], "cadenza")


def test_the_summary_holds_tallies_differences_targets_and_every_tests_detail():
    report = _report()
    json.dumps(report)  # one JSON document
    assert report["tallies"]["nginx"]["fail"] == 1
    assert report["workers"]["differences"] == {"a": {"cadenza": "pass", "cadenza-w1": "fail"}}
    assert report["targets"]["met"]["more_passes_than_nginx"] is False
    assert report["tests"]["cadenza"]["b"]["detail"] == "Setup: PUT config resulted in 405"
    assert report["tests"]["nginx"]["a"]["detail"] == ""
    assert report["tests"]["nginx"]["b"]["detail"] == "not run"


def test_the_table_puts_the_runs_side_by_side_with_the_verdicts():
    text = render(_report())
    header = next(line for line in text.splitlines() if "cadenza-w1" in line)
    assert header.split() == ["cadenza", "cadenza-w1", "nginx"]
    assert "  pass" in text and "  required_fails" in text and "  required_not_run" in text
    assert "optional_fail" not in text  # no run has one
    assert "  note: nginx: the suite's client did not finish within --timeout" in text
    assert "1 tests differ between cadenza, cadenza-w1" in text
    assert "  a: cadenza pass, cadenza-w1 fail" in text
    assert "more passes than nginx (1 vs 1): NOT met" in text
    assert "at most 20 required fails (0; 1 required tests reached no verdict): met" in text
