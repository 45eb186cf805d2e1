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


def test_the_bare_handler_takes_a_batch_of_play_events_as_the_locator_does():
    service = processes.start([sys.executable, "-m", "bench.bare", "--workers", "1"])
    try:
        body = json.dumps({"events": [{"id": str(n)} for n in range(3)]}).encode()
        request = urllib.request.Request(f"{service.url}/v1/plays", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202 and json.load(response) == {"accepted": 3}
    finally:
        assert service.stop() == 0
