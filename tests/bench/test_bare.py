"""The bare handler that the locator benchmark measures against: the same route, a like answer."""

import json
import sys
import urllib.request

from bench import processes


def test_the_bare_handler_answers_the_locator_s_request_from_several_workers():
    service = processes.start([sys.executable, "-m", "bench.bare", "--workers", "2"])
    try:
        url = f"{service.url}/v1/locate/0123456789abcdef?lat=10&lon=10&territory=FR"
        with urllib.request.urlopen(url, timeout=10) as response:
            doc = json.load(response)
            assert response.status == 200
        assert doc["track_id"] == "0123456789abcdef" and len(doc["edges"]) == 3
    finally:
        assert service.stop() == 0
