"""The relay: every instance applies outbox rows still unapplied, and learns from the
outbox what its lost broadcast did not tell it (SPEC 7a; the Relay of the protocol model,
``tests/cache/model/cache_protocol.pml``).

Each pass (about once a second):

* clears this instance's marks of rows it sees applied by someone else (otherwise a row
  another instance applied would keep its tags pending here for ever);
* marks rows unapplied for longer than the grace period pending here (they drop from the
  view at once) and sends every pending bump: after a Redis outage, a refused write, or a
  writer that died between its commit and its bump, whichever instance gets there first
  applies the row, and the others clear their marks;
* while this instance's broadcast is lost, reads the rows written since it was last known
  to be up to date and drops what they cover (marking the unapplied ones pending);
* now and then deletes applied rows older than the retention period.

At start, before the instance serves, every unapplied row is marked pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Final

from cache.background import BackgroundTasks
from cache.config import CacheConfig
from cache.health import RedisHealth
from cache.invalidation import Invalidator
from cache.outbox import Outbox, OutboxRow
from cache.pending import PendingInvalidations

logger = logging.getLogger(__name__)

ROWS_PER_PASS: Final = 1000
PRUNE_EVERY_S: Final = 60.0
COMMIT_WINDOW_S: Final = 30.0
"""Row ids are taken when a transaction inserts, not when it commits: a row may become
visible after one with a higher id. Polling also rereads rows written within this window
(by the writer's clock), so a transaction shorter than it, on a clock not further off, is
never skipped."""


class Relay:
    def __init__(
        self,
        outbox: Outbox,
        config: CacheConfig,
        pending: PendingInvalidations,
        health: RedisHealth,
        invalidator: Invalidator,
        tasks: BackgroundTasks,
    ) -> None:
        self._outbox = outbox
        self._config = config
        self._pending = pending
        self._health = health
        self._invalidator = invalidator
        self._tasks = tasks
        self._cursor = 0
        """While the broadcast is up: below every row this instance may not have heard
        of. While it is lost: the highest row id polled."""
        self._polling = True
        """Until the broadcast first connects too (an instance starting during an outage)."""
        self._seen: dict[int, float] = {}
        """Rows already polled, with their time: the commit window is reread."""
        self._wake = asyncio.Event()
        self._last_prune = 0.0
        self._to_mark: set[int] = set()
        self._marking: asyncio.Task[None] | None = None
        self._failing = False

    async def start(self) -> None:
        """Marks every unapplied row pending: an instance starting during an outage must
        not serve what a row another (or a dead) instance wrote covers."""
        first = page = await self._outbox.unapplied(ROWS_PER_PASS)
        while page:
            for row in page:
                self._mark(row.tags, row.id)
            if len(page) < ROWS_PER_PASS:
                break
            page = await self._outbox.unapplied(ROWS_PER_PASS, after_id=page[-1].id)
        self._cursor = await self._cursor_now(first)

    async def run(self) -> None:
        interval = self._config.outbox_relay_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            try:
                await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database away: the next pass tries again
                if not self._failing:
                    logger.warning("outbox relay pass failed: %r", error)
                self._failing = True
            else:
                self._failing = False

    async def run_pass(self) -> None:
        outbox = self._outbox
        marked = {mark for mark in self._pending.ids() if mark >= 0}
        rows = await outbox.unapplied(ROWS_PER_PASS)
        self._clear_applied_elsewhere(marked, rows)
        now = time.time()
        grace = self._config.outbox_grace_seconds
        for row in rows:
            if now - row.created_at >= grace:
                self._mark(row.tags, row.id)
        if self._pending:
            await self._health.apply_pending()
        if self._polling:
            await self._poll()
        else:
            self._cursor = await self._cursor_now(rows)
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            await outbox.prune(now - self._config.outbox_retention_seconds)

    def _clear_applied_elsewhere(self, marked: set[int], rows: list[OutboxRow]) -> None:
        """Marks made before the query started, of rows it no longer lists as unapplied.
        (A mark made later may be a row committed after the query's snapshot.)"""
        unapplied = {row.id for row in rows}
        horizon = rows[-1].id if len(rows) >= ROWS_PER_PASS else None
        done = [
            mark for mark in marked if mark not in unapplied and (horizon is None or mark < horizon)
        ]
        self._pending.clear(done)

    async def _cursor_now(self, unapplied: list[OutboxRow]) -> int:
        """Below the first unapplied row, else the last row: where polling must start
        if the broadcast were lost now."""
        if unapplied:
            return unapplied[0].id - 1
        return await self._outbox.last_id()

    # -- while the broadcast is lost -----------------------------------------------------

    def on_broadcast_lost(self) -> None:
        self._polling = True
        self._seen.clear()
        self._wake.set()

    def on_broadcast_connected(self) -> None:
        self._polling = False

    async def _poll(self) -> None:
        now = time.time()
        rows = await self._outbox.since(self._cursor, now - COMMIT_WINDOW_S, ROWS_PER_PASS)
        seen = self._seen
        new = [row for row in rows if row.id not in seen]
        for row in new:
            seen[row.id] = row.created_at
            if row.applied:
                self._invalidator.drop(row.tags)
            else:
                self._mark(row.tags, row.id)
        if rows:
            self._cursor = max(self._cursor, rows[-1].id)
        for row_id in [row_id for row_id, at in seen.items() if at < now - COMMIT_WINDOW_S]:
            del seen[row_id]

    def _mark(self, tags: Sequence[str], row: int) -> None:
        self._invalidator.mark(tags, row)

    # -- marking rows applied (after the write answered) --------------------------------

    def applied(self, rows: list[int]) -> None:
        """Rows whose bumps Redis applied: marked so in the database in the background (a
        lost mark only makes some relay bump them again, which is harmless)."""
        self._to_mark.update(rows)
        if self._marking is None or self._marking.done():
            self._marking = self._tasks.spawn(self._mark_applied())

    async def _mark_applied(self) -> None:
        while self._to_mark:
            batch = sorted(self._to_mark)
            self._to_mark.difference_update(batch)
            try:
                await self._outbox.mark_applied(batch)
            except Exception as error:
                logger.warning("could not mark outbox rows applied (%r): a relay will", error)
                return

    async def settle(self, within_s: float) -> None:
        """Waits (bounded) for the marks in flight: called at close, so a short-lived
        process (the CLI) does not leave its applied rows for a relay to bump again."""
        marking = self._marking
        if marking is not None and not marking.done():
            await asyncio.wait([marking], timeout=within_s)
