"""List fields split on commas outside quoted strings."""

import pytest

from edge.fields import split_list


@pytest.mark.parametrize(
    ("value", "members"),
    [
        ("a, b,c", ["a", "b", "c"]),
        ('a="x,y", b', ['a="x,y"', "b"]),
        (" , ,", []),
        ("", []),
        ('sid="unterminated, still one', ['sid="unterminated, still one']),
    ],
)
def test_split_list(value, members):
    assert split_list(value) == members
