"""List fields split on commas outside quoted strings."""

import pytest

from edge.fields import split_list, unquote


@pytest.mark.parametrize(
    ("value", "members"),
    [
        ("a, b,c", ["a", "b", "c"]),
        ('a="x,y", b', ['a="x,y"', "b"]),
        (" , ,", []),
        ("", []),
        ('sid="unterminated, still one', ['sid="unterminated, still one']),
        ('sid="a\\",b", c', ['sid="a\\",b"', "c"]),
        ('sid="a\\\\", c', ['sid="a\\\\"', "c"]),
    ],
)
def test_split_list(value, members):
    assert split_list(value) == members


def test_unquote_undoes_quoted_pairs():
    assert unquote(r"a\"b\\c\d") == 'a"b\\cd'
