"""Both engines of the play log, against a real SQLite file and a real redis-server."""

import uuid

import pytest

from cadenza.errors import ConfigError
from plays.log import check_url, open_log
from tests.plays.events import event


@pytest.fixture(params=["sqlite", "redis"])
def log_url(request, tmp_path, redis_url):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/plays.sqlite3"
    return f"{redis_url}?stream=plays-{uuid.uuid4().hex}&claim_idle_s=0.2"


async def test_events_come_back_in_order_once_each_and_duplicates_are_dropped(log_url):
    log = await open_log(log_url)
    try:
        events = [event() for _ in range(5)]
        assert await log.append(events[:3]) == 3
        assert await log.append(events[2:]) == 2  # events[2] again: dropped
        read = await log.read("history", "c1", 10, 0.1)
        assert [e.event for e in read] == events
        assert await log.lag("history") == 5
        await log.ack("history", read)
        assert await log.lag("history") == 0
        assert await log.read("history", "c1", 10, 0.1) == []
        assert len(await log.read("streams", "c1", 10, 0.1)) == 5  # another group: from 0
    finally:
        await log.close()


async def test_what_a_dead_consumer_read_and_did_not_acknowledge_is_read_again(log_url):
    log = await open_log(log_url)
    try:
        events = [event() for _ in range(4)]
        await log.append(events)
        first = await log.read("history", "c1", 2, 0.1)
        assert [e.event for e in first] == events[:2]
    finally:
        await log.close()  # dies without acknowledging
    log = await open_log(log_url)  # restarted, the same consumer
    try:
        again = await log.read("history", "c1", 2, 0.1)
        assert [e.event for e in again] == events[:2]
        await log.ack("history", again)
        rest = await log.read("history", "c1", 10, 0.1)
        assert [e.event for e in rest] == events[2:]
    finally:
        await log.close()


async def test_a_read_waits_a_bounded_time_for_new_events(log_url):
    log = await open_log(log_url)
    try:
        assert await log.read("history", "c1", 10, 0.2) == []
    finally:
        await log.close()


async def test_redis_gives_a_dead_consumers_pending_events_to_another(redis_url):
    url = f"{redis_url}?stream=plays-{uuid.uuid4().hex}&claim_idle_s=0"
    log = await open_log(url)
    try:
        events = [event() for _ in range(3)]
        await log.append(events)
        assert len(await log.read("streams", "dead", 3, 0.1)) == 3  # never acknowledged
        claimed = await log.read("streams", "alive", 10, 0.1)
        assert [e.event for e in claimed] == events
    finally:
        await log.close()


async def test_redis_bounds_the_stream(redis_url):
    url = f"{redis_url}?stream=plays-{uuid.uuid4().hex}&maxlen=100"
    log = await open_log(url)
    try:
        for _ in range(10):
            await log.append([event() for _ in range(100)])
        kept = await log.client.xlen(log.stream)  # type: ignore[attr-defined]
        assert 100 <= kept < 1000
    finally:
        await log.close()


@pytest.mark.parametrize("url", ["plays.db", "sqlite://plays.db", "http://x", "kafka://x"])
def test_a_url_that_names_no_engine_is_a_config_error(url):
    with pytest.raises(ConfigError, match="sqlite:///PATH or redis://"):
        check_url(url)


async def test_the_sqlite_log_keeps_about_its_bound(tmp_path, monkeypatch):
    monkeypatch.setattr("plays.sqlite_log.TRIM_EVERY", 2)
    log = await open_log(f"sqlite:///{tmp_path}/plays.sqlite3?max_events=10")
    try:
        for _ in range(6):
            await log.append([event() for _ in range(5)])
        assert 10 <= await log.lag("history") < 30
    finally:
        await log.close()
    with pytest.raises(ConfigError, match="max_events"):
        await open_log(f"sqlite:///{tmp_path}/plays.sqlite3?max_events=0")
