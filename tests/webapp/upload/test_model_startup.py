"""Right after a restart: concurrent first requests wait for the champion's load instead of a 503."""

from pathlib import Path

import pytest

from tests.conftest import race, registry_of
from webapp.inference.serving import ModelServer, NoChampion


def test_concurrent_first_requests_all_get_the_champion(app, tiny):
    """10 of 12 concurrent uploads once got "No model is serving yet" while v1 was champion."""
    server = ModelServer(registry_of(app), poll_seconds=3600)  # a fresh process: nothing loaded
    outcomes = race(app, lambda _: server.current(), list(range(12)))
    assert [type(outcome).__name__ for outcome in outcomes] == ["Served"] * 12
    assert {outcome.version for outcome in outcomes} == {1}
    assert len({id(outcome.net) for outcome in outcomes}) == 1  # loaded once, shared


def test_a_failed_load_is_retried_by_the_next_request(app, tiny):
    cache = Path(app.config["MODEL_CACHE"])
    kept = cache.with_name("model-cache.kept")
    if cache.exists():
        cache.rename(kept)
    cache.write_text("")  # the model cache cannot be created: a real, passing fault (a share not mounted yet)
    server = ModelServer(registry_of(app), poll_seconds=3600)
    try:
        with pytest.raises(NoChampion, match="cannot be loaded") as caught:
            server.current()
        assert caught.value.status == 503
    finally:
        cache.unlink()
        if kept.exists():
            kept.rename(cache)
    assert server.current().version == 1  # not "no model" for the next hour
