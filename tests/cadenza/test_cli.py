"""The ``cadenza`` command itself: version, help and usage errors."""

import subprocess
import sys

import pytest

from cadenza import __version__
from cadenza.cli import build_parser, main


def test_version(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"cadenza {__version__}"


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_help_lists_the_commands():
    text = build_parser().format_help()
    assert "ingest" in text and "bench" in text


def test_a_configuration_error_exits_2_without_traceback(
    tmp_path, capsys: pytest.CaptureFixture[str]
):
    ladder = tmp_path / "ladder.toml"
    ladder.write_text("sample_rate = [")
    code = main(["ingest", str(tmp_path), "--out", str(tmp_path / "o"), "--ladder", str(ladder)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("cadenza: error: ") and str(ladder) in err and "not valid TOML" in err


@pytest.mark.parametrize(
    ("argv", "absent"),
    [
        (["fleet", "status"], {"bench", "edge", "matplotlib", "aiohttp"}),
        (["-v", "edge", "--help"], {"bench", "encoder.cli", "matplotlib", "locator"}),
    ],
)
def test_a_command_imports_only_its_component(argv, absent):
    """A service started by systemd or `fleet up` does not pay for the benchmarks' imports."""
    script = (
        "import sys\nfrom cadenza.cli import build_parser\n"
        f"build_parser({argv!r})\n"
        f"print(sorted(m for m in {sorted(absent)!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-P", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
