"""deploy/prometheus/: the rules and alerts pass promtool's checks and their unit tests."""

import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS = Path(__file__).parents[2] / "deploy" / "prometheus"
RULE_FILES = sorted(p for p in PROMETHEUS.glob("*.yml") if p.name != "prometheus.yml")
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))

promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (Debian: apt-get install prometheus; scripts/setup.sh does)",
)


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_the_rule_files_and_their_tests_are_there():
    assert [p.name for p in RULE_FILES] == ["alerts.yml", "rules.yml"]
    assert [p.name for p in TEST_FILES] == ["alerts_test.yml", "rules_test.yml"]


@promtool
def test_promtool_checks_the_rules():
    done = _promtool("check", "rules", *RULE_FILES)
    assert done.returncode == 0, done.stdout + done.stderr


@promtool
def test_the_rules_pass_their_unit_tests():
    done = _promtool("test", "rules", *TEST_FILES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(TEST_FILES)


def test_every_alert_has_a_unit_test():
    alerts = {
        line.split(":", 1)[1].strip()
        for line in (PROMETHEUS / "alerts.yml").read_text().splitlines()
        if line.strip().startswith("- alert:")
    }
    tested = (PROMETHEUS / "tests" / "alerts_test.yml").read_text()
    assert alerts and all(f"alertname: {name}\n" in tested for name in alerts)


@promtool
def test_promtool_checks_the_committed_configuration_with_its_rules():
    done = _promtool("check", "config", PROMETHEUS / "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 rule files found" in done.stdout
