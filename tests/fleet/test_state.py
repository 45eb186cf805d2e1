"""The state folder: records, secrets (0600, kept across runs), bounded reads, the lock."""

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.errors import ConfigError
from cadenza.settings import ENV_TOKEN_KEYS, parse_token_keys
from fleet.plan import ENV_OPERATOR_KEY
from fleet.state import Record, State, StateFolder, parse_env, render_env

RECORD = Record("eu-west-1", "edge", "http://127.0.0.1:8081", "http://127.0.0.1:8081/status",
                4242, 123456, "/tmp/x.log", "eu-west")  # fmt: skip


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_state_is_written_and_read_back(tmp_path: Path):
    folder = StateFolder(tmp_path / "fleet")
    assert folder.read_state() is None
    state = State("/srv/fleet.toml", "/srv", (RECORD,))
    folder.write_state(state)
    assert folder.read_state() == state
    folder.forget_state()
    folder.forget_state()
    assert folder.read_state() is None


@pytest.mark.parametrize(
    "text",
    ["{", "[]", '{"fleet": "f", "cwd": "c"}', '{"fleet": "f", "cwd": "c", "services": [{}]}',
     '{"fleet": "f", "cwd": "c", "services": [{"name": "x", "kind": "edge", "url": "u", '
     '"health_url": "h", "pid": 1, "start_time": 5, "log": "l"}]}'],
)  # fmt: skip
def test_a_damaged_state_is_named_with_what_to_do(tmp_path: Path, text: str):
    (tmp_path / "state.json").write_text(text)
    with pytest.raises(ConfigError, match=r"state\.json.*remove"):
        StateFolder(tmp_path).read_state()


def test_an_oversized_state_file_is_refused(tmp_path: Path):
    (tmp_path / "state.json").write_bytes(b" " * (2 << 20))
    with pytest.raises(ConfigError, match="larger than"):
        StateFolder(tmp_path).read_state()


def test_secrets_are_made_once_private_and_usable_as_token_keys(tmp_path: Path):
    folder = StateFolder(tmp_path / "fleet")
    first = folder.secrets()
    assert mode(tmp_path / "fleet" / "secrets.env") == 0o600
    assert set(first) == {ENV_TOKEN_KEYS, ENV_OPERATOR_KEY}
    assert len(parse_token_keys(first[ENV_TOKEN_KEYS], "test")) == 1
    assert folder.secrets() == first  # the next run keeps the fleet's keys


def test_an_operator_s_own_secrets_file_is_kept_and_completed(tmp_path: Path):
    (tmp_path / "secrets.env").write_text(f"# mine\n{ENV_TOKEN_KEYS}=k7:my-own-secret-of-20c\n")
    values = StateFolder(tmp_path).secrets()
    assert values[ENV_TOKEN_KEYS] == "k7:my-own-secret-of-20c"
    assert values[ENV_OPERATOR_KEY]
    assert mode(tmp_path / "secrets.env") == 0o600


def test_the_label_key_is_kept_private(tmp_path: Path):
    folder = StateFolder(tmp_path)
    assert folder.api_key() is None
    folder.save_api_key("cdz_abc")
    assert folder.api_key() == "cdz_abc"
    assert mode(tmp_path / "label.env") == 0o600
    assert (tmp_path / "label.env").read_text() == "CADENZA_API_KEY=cdz_abc\n"


def test_a_second_up_or_down_on_the_same_folder_is_refused_while_one_runs(tmp_path: Path):
    folder = StateFolder(tmp_path)
    with (
        folder.locked(),
        pytest.raises(ConfigError, match="another 'cadenza fleet up' or 'down'"),
        StateFolder(tmp_path).locked(),
    ):
        pass
    with folder.locked():
        pass


def test_env_lines_that_are_not_key_value_are_named():
    with pytest.raises(ConfigError, match=r"secrets\.env:2: expected KEY=VALUE"):
        parse_env("A=1\nnot a line\n", "secrets.env")
    with pytest.raises(ConfigError, match="one word"):
        render_env({"A": "two words"})


@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,15}", fullmatch=True),
                       st.from_regex(r"[A-Za-z0-9:_.,/+=-]{0,40}", fullmatch=True)))  # fmt: skip
def test_env_files_read_back_what_was_written(values):
    assert parse_env(render_env(values), "f") == values
