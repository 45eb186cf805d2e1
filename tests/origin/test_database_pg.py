"""The catalog on PostgreSQL: what only a shared server database has (the engine-neutral
behaviour is tested on both engines in test_catalog). Several ``Catalog`` objects on one
database stand for origin replicas: each has its own connections, as a process would."""

import asyncio
import hashlib

import psycopg
import pytest

from origin import database_pg
from origin.catalog import Catalog
from origin.errors import CatalogUnavailable, OriginError
from tests.origin.test_catalog import TRACK, Clock, stage


@pytest.fixture
async def catalog(postgres_url):
    catalog = await Catalog.open(postgres_url, Clock())
    yield catalog
    await catalog.close()


@pytest.fixture
async def replica(postgres_url, catalog):
    replica = await Catalog.open(postgres_url, Clock())
    yield replica
    await replica.close()


def _query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


async def test_open_creates_the_schema_once(catalog, postgres_url):
    assert _query(postgres_url, "SELECT version FROM schema_version") == [(1,)]
    tables = {
        r[0]
        for r in _query(
            postgres_url, "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public'"
        )
    }  # fmt: skip
    assert {"labels", "tracks", "versions", "objects", "takedowns", "events"} <= tables
    second = await Catalog.open(postgres_url)  # a second replica finds the schema in place
    await second.close()
    assert _query(postgres_url, "SELECT version FROM schema_version") == [(1,)]


async def test_open_refuses_a_newer_schema(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (99)")
    with pytest.raises(OriginError, match="schema version 99"):
        await Catalog.open(postgres_url)


async def test_an_unreachable_database_is_a_clear_error_without_the_password(tmp_path):
    url = f"postgresql://cadenza:hunter2-secret@/catalog?host={tmp_path}&connect_timeout=5"
    with pytest.raises(CatalogUnavailable, match="cannot reach the PostgreSQL catalog") as e:
        await Catalog.open(url)
    assert "hunter2" not in str(e.value)
    assert e.value.status == 503


async def test_only_the_hash_of_a_key_is_stored(catalog, postgres_url):
    key = await catalog.add_label("indie")
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert _query(postgres_url, "SELECT name, key_sha256 FROM labels") == [("indie", digest)]


async def test_a_replicas_event_wakes_a_wait_at_once(catalog, replica):
    await catalog.add_label("indie")
    await stage(catalog)
    after = await catalog.last_seq()
    # Far longer than the test's bound below: only the notification can end the wait in time.
    waiter = asyncio.create_task(catalog.wait_for_events(after, timeout=60))
    await asyncio.sleep(0)
    seq = await replica.takedown(TRACK, "DE")
    events = await asyncio.wait_for(waiter, timeout=20)
    assert [e.seq for e in events] == [seq]


async def test_an_event_committed_late_is_never_skipped_by_a_follower(catalog, postgres_url):
    """Another replica holds the writers' turn with an event appended but not yet committed:
    this replica's event must wait for it, or a follower would read past the earlier seq."""
    await catalog.add_label("indie")
    await stage(catalog)
    lock = f"SELECT pg_advisory_xact_lock({database_pg.LOCK_SPACE}, {database_pg.WRITES})"
    with psycopg.connect(postgres_url, autocommit=True) as other:
        other.execute("BEGIN")
        other.execute(lock)
        other.execute(
            "INSERT INTO events (kind, track_id, territory, data, created_at)"
            " VALUES ('takedown', %s, 'FR', '{}', 0)",
            (TRACK,),
        )
        write = asyncio.create_task(catalog.takedown(TRACK, "DE"))
        await asyncio.wait({write}, timeout=1.0)  # would be done by now without the turn-taking
        seen = [e.seq for e in await catalog.events(0)]
        other.execute("COMMIT")
    await asyncio.wait_for(write, timeout=20)
    seen += [e.seq for e in await catalog.events(seen[-1] if seen else 0)]
    assert seen == [e.seq for e in await catalog.events(0)]
    assert len(seen) == 2


async def test_a_track_lock_is_held_by_one_replica_at_a_time(catalog, replica):
    order: list[str] = []
    first_holds = asyncio.Event()

    async def first() -> None:
        async with catalog.hold_track(TRACK):
            order.append("first in")
            first_holds.set()
            for _ in range(20):  # the second replica keeps trying meanwhile
                await asyncio.sleep(0.01)
            order.append("first out")

    async def second() -> None:
        await first_holds.wait()
        async with replica.hold_track(TRACK):
            order.append("second in")

    await asyncio.wait_for(asyncio.gather(first(), second()), timeout=30)
    assert order == ["first in", "first out", "second in"]
    async with catalog.hold_track("t000000000000009"), replica.hold_track(TRACK):
        pass  # other tracks are free meanwhile


async def test_a_replica_that_dies_releases_its_track_lock(catalog, postgres_url):
    dying = await Catalog.open(postgres_url)
    try:
        async with dying.hold_track(TRACK):
            holder = _query(
                postgres_url,
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            assert holder
            _query(postgres_url, f"SELECT pg_terminate_backend({holder[0][0]})")
            async with catalog.hold_track(TRACK):
                pass
    except CatalogUnavailable:
        pass  # the dead session's unlock fails, as a killed process never sends it
    finally:
        await dying.close()


async def test_connections_the_server_dropped_are_reopened(catalog, postgres_url):
    await catalog.add_label("indie")
    _query(
        postgres_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    assert await catalog.tracks() == ([], None)  # as after a restart of the server
    # The listener reconnects too: a replica's event still wakes a wait.
    replica = await Catalog.open(postgres_url)
    try:
        await stage(catalog)
        after = await catalog.last_seq()
        waiter = asyncio.create_task(catalog.wait_for_events(after, timeout=60))
        seq = await replica.takedown(TRACK, None)
        assert [e.seq for e in await asyncio.wait_for(waiter, timeout=20)] == [seq]
    finally:
        await replica.close()


def test_describe_names_the_database_and_host_but_never_the_password():
    text = database_pg.describe("postgresql://u:pw-123@db.example:5433/music")
    assert "music" in text and "db.example" in text and "pw-123" not in text
    assert "local socket" in database_pg.describe("postgresql:///music")


def test_track_keys_are_stable_32_bit_integers():
    keys = {database_pg.track_key(f"t{n:015d}") for n in range(1000)}
    assert all(-(2**31) <= k < 2**31 for k in keys)
    assert len(keys) > 990
    assert database_pg.track_key(TRACK) == database_pg.track_key(TRACK)


def test_sql_with_a_percent_sign_is_refused():
    assert database_pg._translated("SELECT ? , ?") == "SELECT %s , %s"
    with pytest.raises(ValueError, match="%"):
        database_pg._translated("SELECT '100%'")
