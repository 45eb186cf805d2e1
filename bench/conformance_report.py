"""The conformance benchmark's pure part: the suite's output read, tallied, compared and printed.

The suite's own scoring (``determineTestResult``) names each test's category; this module only
reads those names, so a category the suite adds later is counted, not misread.
"""

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cadenza.errors import CadenzaError

# The suite's categories (results.mjs ``resultTypes``) in the order a reader wants them.
CATEGORIES = (
    "pass",
    "fail",
    "optional_fail",
    "yes",
    "no",
    "setup_fail",
    "harness_fail",
    "dependency_fail",
    "retry",
    "untested",
)
NOT_RUN = frozenset({"setup_fail", "harness_fail", "dependency_fail", "retry"})
MAX_REQUIRED_FAILS = 20
PUBLISHED_PASSES = {"Apache Traffic Server": 202, "nginx": 158}
MAX_TEXT = 64 * 1024 * 1024  # a full run's results are about 50 KB


class SuiteOutputError(CadenzaError):
    """The suite printed something that is not the JSON it is known to print."""


@dataclass(frozen=True)
class Score:
    category: str  # "pass", "fail", ... as the suite's scoring names it
    kind: str  # "required", "optimal" or "check"
    group: str  # the suite's test group, e.g. "cc-freshness"


def parse_results(text: str, source: str) -> dict[str, Any]:
    """The client's results: test id -> ``true`` or ``[error name, message]``."""
    data = _json_object(text, source)
    for test_id, result in data.items():
        failed = isinstance(result, list) and len(result) == 2
        ok = result is True or (failed and all(isinstance(part, str) for part in result))
        if not ok:
            raise SuiteOutputError(f"{source}: result of {test_id!r} is {result!r}")
    return data


def parse_scores(text: str, source: str) -> dict[str, Score]:
    """The scoring script's output: test id -> category, kind and group."""
    scores = {}
    for test_id, entry in _json_object(text, source).items():
        fields = entry if isinstance(entry, dict) else {}
        values = [fields.get(name) for name in ("category", "kind", "group")]
        strings = [value for value in values if isinstance(value, str) and value]
        if len(strings) != len(values):
            raise SuiteOutputError(f"{source}: score of {test_id!r} is {entry!r}")
        scores[test_id] = Score(*strings)
    return scores


def _json_object(text: str, source: str) -> dict[str, Any]:
    if len(text) > MAX_TEXT:
        raise SuiteOutputError(f"{source}: {len(text)} characters, more than a run can print")
    # The client may log a line or two before its JSON document; the document is the rest.
    start = text.find("{")
    try:
        data = json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError as error:
        raise SuiteOutputError(f"{source}: not JSON ({error}): {text[:200]!r}") from None
    if not isinstance(data, dict):
        raise SuiteOutputError(f"{source}: expected a JSON object, got {text[:200]!r}")
    return data


def tally(scores: Mapping[str, Score]) -> dict[str, int]:
    """Counts per category, plus the two figures the targets use.

    ``required_fails``: required tests the suite scores ``fail`` (the suite gives ``fail`` only
    to required tests). ``required_not_run``: required tests that never reached a verdict
    (setup, harness or dependency failures), which a cache that breaks the suite's own
    requests piles up instead of fails.
    """
    counts = Counter(score.category for score in scores.values())
    ordered = {name: counts.pop(name, 0) for name in CATEGORIES}
    ordered.update(sorted(counts.items()))
    ordered["required_fails"] = ordered["fail"]
    ordered["required_not_run"] = sum(
        s.kind == "required" and s.category in NOT_RUN for s in scores.values()
    )
    ordered["tests"] = len(scores)
    return ordered


def differences(runs: Mapping[str, Mapping[str, Score]]) -> dict[str, dict[str, str]]:
    """Tests whose category is not the same in every run: test id -> {run: category}."""
    ids = sorted(set().union(*(scores.keys() for scores in runs.values())))
    found = {}
    for test_id in ids:
        seen = {
            run: scores[test_id].category if test_id in scores else "missing"
            for run, scores in runs.items()
        }
        if len(set(seen.values())) > 1:
            found[test_id] = seen
    return found


def targets(edge: Mapping[str, int], nginx: Mapping[str, int] | None) -> dict[str, Any]:
    """The edge against nginx: more passes, and at most MAX_REQUIRED_FAILS required fails."""
    met: dict[str, bool | None] = {
        "more_passes_than_nginx": None if nginx is None else edge["pass"] > nginx["pass"],
        "required_fails_at_most": edge["required_fails"] <= MAX_REQUIRED_FAILS,
    }
    return {"max_required_fails": MAX_REQUIRED_FAILS, "met": met}


def summary(
    setup: Mapping[str, Any],
    runs: Mapping[str, Mapping[str, Score]],
    results: Mapping[str, Mapping[str, Any]],
    compared: Sequence[str],
    edge: str | None,
) -> dict[str, Any]:
    """The whole report as one JSON-ready document.

    ``compared`` names the edge runs whose results must agree (the worker counts); ``edge`` the
    run that is held to the targets.
    """
    tallies = {run: tally(scores) for run, scores in runs.items()}
    per_test = {
        run: {
            test_id: {
                "category": score.category,
                "kind": score.kind,
                "group": score.group,
                "detail": _detail(results[run].get(test_id)),
            }
            for test_id, score in scores.items()
        }
        for run, scores in runs.items()
    }
    doc: dict[str, Any] = {
        "setup": dict(setup),
        "tallies": tallies,
        "workers": {
            "runs": list(compared),
            "differences": differences({run: runs[run] for run in compared}),
        },
        "published_passes": PUBLISHED_PASSES,
        "tests": per_test,
    }
    if edge is not None:
        doc["targets"] = targets(tallies[edge], tallies.get("nginx"))
    return doc


def _detail(result: Any) -> str:
    if result is None:
        return "not run"
    return "" if result is True else f"{result[0]}: {result[1]}"


def render(report: Mapping[str, Any]) -> str:
    """The table for people: one column per run, one row per category that occurred."""
    tallies, setup = report["tallies"], report["setup"]
    runs = list(tallies)
    rows = [name for name in _row_names(tallies) if any(t.get(name) for t in tallies.values())]
    rows += [name for name in ("required_fails", "required_not_run") if name not in rows]
    width = max(12, *(len(run) + 2 for run in runs))
    lines = [
        f"HTTP cache conformance (http-tests/cache-tests): {setup['tests']} tests per run, "
        f"{setup['seconds']:.0f} s",
        f"  {'':18}" + "".join(f"{run:>{width}}" for run in runs),
    ]
    for name in rows:
        counts = "".join(f"{t.get(name, 0):>{width}}" for t in tallies.values())
        lines.append(f"  {name:18}{counts}")
    published = ", ".join(f"{name} {n}" for name, n in report["published_passes"].items())
    lines.append(f"  published passes for reference: {published}")
    lines += [f"  note: {note}" for note in setup.get("notes", [])]
    lines += _render_workers(report["workers"])
    if "targets" in report:
        lines += _render_targets(report, setup["edge_run"])
    return "\n".join(lines)


def _row_names(tallies: Mapping[str, Mapping[str, int]]) -> list[str]:
    names: list[str] = []
    for counts in tallies.values():
        names += [name for name in counts if name not in names and name != "tests"]
    return names


def _render_workers(workers: Mapping[str, Any]) -> list[str]:
    compared, found = workers["runs"], workers["differences"]
    if len(compared) < 2:
        return []
    if not found:
        return [f"\nWorkers: {', '.join(compared)} agree on every test"]
    lines = [f"\nWorkers: {len(found)} tests differ between {', '.join(compared)}"]
    for test_id, seen in found.items():
        lines.append(f"  {test_id}: " + ", ".join(f"{run} {cat}" for run, cat in seen.items()))
    return lines


def _render_targets(report: Mapping[str, Any], edge: str) -> list[str]:
    t, met = report["tallies"], report["targets"]["met"]
    nginx = t.get("nginx")
    versus = "no nginx run" if nginx is None else f"{t[edge]['pass']} vs {nginx['pass']}"
    not_run = t[edge]["required_not_run"]
    caveat = f"; {not_run} required tests reached no verdict" if not_run else ""
    return [
        f"\nTargets for {edge}:",
        f"  more passes than nginx ({versus}): {_verdict(met['more_passes_than_nginx'])}",
        f"  at most {MAX_REQUIRED_FAILS} required fails ({t[edge]['required_fails']}{caveat}): "
        f"{_verdict(met['required_fails_at_most'])}",
    ]


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "met" if ok else "NOT met"
