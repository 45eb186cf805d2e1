"""``cadenza fleet prometheus-config``: the committed deploy/prometheus/prometheus.yml is its
output for configs/fleet.toml, and bad input is a clear error with exit code 2."""

from pathlib import Path

import pytest

from cadenza.cli import main

ROOT = Path(__file__).parents[2]
COMMITTED = ROOT / "deploy" / "prometheus" / "prometheus.yml"


def test_the_committed_configuration_is_the_generated_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.chdir(ROOT)  # the header names the fleet file as given
    assert main(["fleet", "prometheus-config", "--fleet", "configs/fleet.toml"]) == 0
    assert capsys.readouterr().out == COMMITTED.read_text(), (
        "regenerate: cadenza fleet prometheus-config --fleet configs/fleet.toml "
        "--out deploy/prometheus/prometheus.yml"
    )


def test_out_writes_the_file_with_the_asked_interval_and_rules(tmp_path):
    out = tmp_path / "prometheus.yml"
    fleet = str(ROOT / "configs" / "fleet.toml")
    argv = ["fleet", "prometheus-config", "--fleet", fleet, "--out", str(out)]
    assert main([*argv, "--scrape-interval", "2", "--rules", "/etc/prometheus/cadenza.yml"]) == 0
    text = out.read_text()
    assert "scrape_interval: 2s" in text
    assert 'rule_files:\n  - "/etc/prometheus/cadenza.yml"\nscrape_configs:' in text
    assert main([*argv, "--rules"]) == 0
    assert "rule_files" not in out.read_text()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (None, "settings file not found"),
        ('[[origin]]\nurl = "http://127.0.0.1:1"\n', "name the locator"),
    ],
)
def test_a_bad_fleet_file_exits_2_naming_it(
    tmp_path, capsys: pytest.CaptureFixture[str], table, message
):
    fleet = tmp_path / "fleet.toml"
    if table is not None:
        fleet.write_text(table)
    assert main(["fleet", "prometheus-config", "--fleet", str(fleet)]) == 2
    err = capsys.readouterr().err
    assert str(fleet) in err and message in err


def test_a_bad_interval_or_folder_exits_2(tmp_path, capsys: pytest.CaptureFixture[str]):
    fleet = str(ROOT / "configs" / "fleet.toml")
    base = ["fleet", "prometheus-config", "--fleet", fleet]
    assert main([*base, "--scrape-interval", "0"]) == 2
    assert "1 to 3600 seconds" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main([*base, "--out", str(tmp_path / "file" / "prometheus.yml")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_fleet_needs_an_action(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        main(["fleet"])
    assert exit_info.value.code == 2
    assert "ACTION" in capsys.readouterr().err
