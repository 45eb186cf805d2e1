"""Who is listening: from a trusted front end's header, or ?listener= in labs, or nobody."""

import pytest

from locator.listeners import ListenerError, listener_of


def test_a_trusted_header_names_the_listener():
    headers = {"X-Cadenza-Listener": "alice_01"}
    assert listener_of(headers, {}, header="X-Cadenza-Listener", from_query=False) == "alice_01"


def test_the_header_wins_over_the_query_and_is_ignored_unless_configured():
    headers, query = {"X-Cadenza-Listener": "alice"}, {"listener": "mallory"}
    assert listener_of(headers, query, header="X-Cadenza-Listener", from_query=True) == "alice"
    assert listener_of(headers, query, header="", from_query=True) == "mallory"
    assert listener_of(headers, query, header="", from_query=False) == ""


def test_without_a_source_a_play_is_anonymous():
    assert listener_of({}, {}, header="X-Cadenza-Listener", from_query=True) == ""
    assert listener_of({}, {"listener": ""}, header="", from_query=True) == ""


@pytest.mark.parametrize("bad", ["a b", "a|b", "é", "x" * 65, "../x"])
def test_a_malformed_listener_is_a_400_that_names_its_source(bad: str):
    with pytest.raises(ListenerError, match="listener parameter") as caught:
        listener_of({}, {"listener": bad}, header="", from_query=True)
    assert caught.value.status == 400
    with pytest.raises(ListenerError, match="X-Who header"):
        listener_of({"X-Who": bad}, {}, header="X-Who", from_query=False)
