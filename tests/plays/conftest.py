"""A real redis-server per test module, for the Redis Streams engine of the play log."""

from collections.abc import Iterator

import pytest

from bench.processes import redis_server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url
