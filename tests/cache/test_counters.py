"""One hook per event: the process counters and the open observation see the same add."""

from __future__ import annotations

import pytest

from cache.counters import COUNTERS, Counters
from cache.observation import Observation


def test_one_add_feeds_the_process_total_and_the_open_observation() -> None:
    counters = Counters()
    counters.add("l1_hits")
    with Observation() as observation:
        counters.add("l1_hits", 3)
        counters.add("loads")
    counters.add("loads")
    assert counters["l1_hits"] == 4
    assert counters["loads"] == 2
    assert observation.counts()["l1_hits"] == 3
    assert observation.counts()["loads"] == 1


def test_nested_observations_count_in_the_innermost_only() -> None:
    counters = Counters()
    with Observation() as outer:
        with Observation() as inner:
            counters.add("l2_hits")
        counters.add("l2_misses")
    assert inner.counts()["l2_hits"] == 1
    assert outer.counts()["l2_hits"] == 0
    assert outer.counts()["l2_misses"] == 1


def test_a_misspelt_event_is_an_error_not_a_silent_zero() -> None:
    with pytest.raises(KeyError):
        Counters().add("l1_hit")


def test_snapshot_is_detached_and_complete() -> None:
    counters = Counters()
    snapshot = counters.snapshot()
    counters.add("redis_errors")
    assert snapshot["redis_errors"] == 0
    assert set(snapshot) == {*COUNTERS, "load_batch_max"}
