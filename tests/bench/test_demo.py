"""``cadenza bench demo`` (``make demo``): the whole system, end to end, as it prints it."""

import argparse
from pathlib import Path

import pytest

from bench.demo import run
from cadenza.errors import ConfigError
from player.traces import DEFAULT_TRACES


def test_the_demo_plays_through_a_shaped_link_and_a_killed_edge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    assert run(argparse.Namespace(folder=tmp_path / "demo", traces=DEFAULT_TRACES)) == 0
    out = capsys.readouterr().out
    for step in ("1. A small album", "2. The fleet", "3. Ingest", "4. Play", "5. Play", "6. Stop"):
        assert step in out
    assert out.count(" ok ") == 3
    assert out.count("startup") == 2 and "killed: eu-west" in out
    assert "(1 failover)" in out and "failed on eu-west" in out


def test_a_missing_trace_folder_is_named(tmp_path: Path):
    with pytest.raises(ConfigError, match="is missing"):
        run(argparse.Namespace(folder=tmp_path / "demo", traces=tmp_path / "nowhere"))
