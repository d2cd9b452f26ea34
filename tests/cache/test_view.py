"""The tag-version view and its pending set (cache/versions.py): bounded, forward only,
and deaf to Redis replies that may predate a local invalidation or flush."""

from __future__ import annotations

from cache.keys import GLOBAL_TAG
from cache.pending import PendingInvalidations
from cache.versions import TagVersionView


def test_the_view_is_bounded_by_clearing_itself() -> None:
    view = TagVersionView(max_tags=4)
    for index in range(10):
        assert view.merge([(f"t{index}", 1)])
        assert len(view) <= 4
    # Cleared rather than trimmed: a tag it forgot is unknown (a miss), never wrong.
    assert not view.is_current((("t0", 1),))
    view.merge([("t9", 1)])
    assert view.is_current((("t9", 1),))


def test_a_reply_that_started_before_a_drop_is_not_merged() -> None:
    view = TagVersionView(max_tags=100)
    view.merge([("t", 1)])
    started = view.epoch  # a Redis read is sent now; its reply will say t is at 1
    view.drop(["t"])  # a local invalidation of t meanwhile (its bump not applied yet)
    assert not view.merge([("t", 1)], started)
    assert not view.is_current((("t", 1),)), "the dropped tag's old version came back"
    # A read that starts after the drop is merged.
    assert view.merge([("t", 2)], view.epoch)
    assert view.is_current((("t", 2),))


def test_a_reply_that_started_before_a_flush_is_not_merged() -> None:
    view = TagVersionView(max_tags=100)
    started = view.epoch
    view.flush()  # the broadcast was lost: versions learnt before may be stale
    assert not view.merge([("t", 1)], started)
    assert len(view) == 0


def test_versions_only_move_forward() -> None:
    view = TagVersionView(max_tags=100)
    view.merge([("t", 5)])
    view.merge([("t", 3)])  # a late broadcast of an older bump
    assert view.is_current((("t", 5),))


def test_too_many_pending_tags_fall_back_to_the_global_tag() -> None:
    pending = PendingInvalidations(limit=3)
    pending.mark(["a", "b"])
    assert not pending.blocks(["unrelated"])
    pending.mark(["c", "d", "e"])  # past the limit: this mark covers every tag
    assert len(pending) == 2
    assert pending.blocks(["unrelated"])
    assert pending.blocked(["unrelated"]) == {"unrelated"}
    batch = pending.batch()
    assert batch.everything  # one bump of the global tag
    assert len(batch.ids) == 2
    pending.replayed(batch, landed=["*"])
    assert not pending


def test_a_tag_stays_pending_while_any_mark_covering_it_is_uncleared() -> None:
    pending = PendingInvalidations(limit=100)
    pending.mark(["t", "u"], row=1)
    pending.mark(["t"], row=2)
    pending.clear([1])  # the bump of row 1 applied; row 2 still is not
    assert pending.blocks(["t"])
    assert not pending.blocks(["u"])
    pending.clear([2])
    assert not pending


def test_pending_tags_stay_unknown_to_the_view() -> None:
    view = TagVersionView(max_tags=100, max_pending=10)
    view.merge([("t", 1)])
    view.drop(["t"])
    view.pending.mark(["t"])
    assert view.merge([("t", 1)], view.epoch)  # a read after the drop; Redis still has 1
    assert not view.is_current((("t", 1),))
    # A load without Redis gets a local version for it, which the view does not adopt.
    local = view.local_versions(["t", GLOBAL_TAG])
    assert local[0][1] < 0
    assert not view.is_current(local[:1])
