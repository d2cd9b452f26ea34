"""Mutation testing of the guarantee paths: does the suite notice when one of them breaks?

Each mutant is one small source edit (file, exact original text, replacement) that removes
or weakens one guarantee of SPEC 6 (issue 13 item 6). The runner copies the tree to a
temporary directory (never touching the working tree), applies one mutant at a time, runs
the tests named for it with a timeout, and reports the mutant *killed* (a test failed) or
*survived* (every test passed). It exits non-zero on any survivor, on a mutant whose
original text is no longer in its file (the list must follow the code), and when the
unmutated copy does not pass the selected tests (a baseline that fails proves nothing).

    .venv/bin/python -m tests.mutants            # every mutant
    .venv/bin/python -m tests.mutants --list     # names and what each one breaks
    .venv/bin/python -m tests.mutants view-unbounded pending-never-global
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = 180.0


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: str
    path: str
    original: str
    replacement: str
    tests: tuple[str, ...]


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "no-flush-on-resubscribe",
        "L1 is not flushed when the broadcast (re)subscribes: bumps published while this "
        "instance was unsubscribed stay unknown to it",
        "cache/invalidation.py",
        """    def on_broadcast_connected(self) -> None:
        self.flush_l1()
""",
        """    def on_broadcast_connected(self) -> None:
""",
        ("tests/cache/test_broadcast.py",),
    ),
    Mutant(
        "none-is-the-string-none",
        "a key part None is spelled like the string 'None', so a field key (and every "
        'other key) of null and "None" arguments collide',
        "cache/keys.py",
        """    if part is None:
        return "@none"
""",
        """    if part is None:
        return "None"
""",
        ("tests/cache/test_keys.py::test_classic_collisions_are_apart",),
    ),
    Mutant(
        "pending-does-not-hide-l2",
        "an L2 entry covered by an invalidation Redis has not applied is served",
        "cache/reads.py",
        """            if (
                opened is None
                or (pending and pending.blocks(tags))
                or (blocked and not blocked.isdisjoint(tags))
            ):""",
        """            if opened is None:""",
        ("tests/cache/test_refused_writes.py", "tests/cache/test_health.py"),
    ),
    Mutant(
        "probe-forgets-pending",
        "the probe that closes the breaker pings instead of replaying the pending "
        "invalidations: Redis is trusted again before it has them",
        "cache/health.py",
        """            async with Deadline(self._probe_timeout_s):
                await self._send_invalidations(redis)""",
        """            async with Deadline(self._probe_timeout_s):
                await redis.ping()""",
        (
            "tests/cache/test_refused_writes.py"
            "::test_the_breaker_stays_open_while_redis_refuses_the_pending_bumps",
            "tests/cache/test_health.py"
            "::test_the_probe_that_closes_the_breaker_replays_the_pending_invalidations",
        ),
    ),
    Mutant(
        "pending-never-global",
        "the pending set grows without bound instead of falling back to the global tag",
        "cache/pending.py",
        """        if len(self._counts) + len(unique) > self._limit:""",
        """        if False:""",
        ("tests/cache/test_view.py", "tests/cache/test_health.py"),
    ),
    Mutant(
        "view-unbounded",
        "the tag-version view is never cleared when full: it grows with every tag seen",
        "cache/versions.py",
        "if len(self._versions) < self._max_tags and len(self._floor) < self._max_tags:",
        "if True:",
        ("tests/cache/test_view.py",),
    ),
    Mutant(
        "merge-ignores-epoch",
        "a Redis reply that started before a local invalidation or flush is folded into "
        "the view: the dropped tag's old version comes back",
        "cache/versions.py",
        """        if epoch is not None and epoch != self.epoch:
            return False
        if not self._room():""",
        """        if not self._room():""",
        (
            "tests/cache/test_view.py",
            "tests/cache/test_invalidation.py",
            "tests/cache/test_single_redis_faults.py",
        ),
    ),
    Mutant(
        "l1-fill-ignores-epoch",
        "a load in flight across a local invalidation or flush fills L1",
        "cache/reads.py",
        """        if epoch != view.epoch:
            # An invalidation or flush happened since these versions were read.""",
        """        if False:
            # An invalidation or flush happened since these versions were read.""",
        (
            "tests/cache/test_invalidation.py",
            "tests/cache/test_single_redis_faults.py",
            "tests/cache/test_broadcast.py",
        ),
    ),
    Mutant(
        "composite-keeps-newest",
        "a recording keeps the newest version of a tag: a composite built across an "
        "invalidation validates with the old value inside",
        "cache/recording.py",
        "if current is None or version < current:",
        "if current is None or version > current:",
        ("tests/cache/test_recording.py", "tests/cache/test_composites.py"),
    ),
    Mutant(
        "unconditional-fill",
        "the L2 fill does not check the tag versions it was computed against: a loader "
        "that read the database before an invalidation stores its old value",
        "cache/scripts.py",
        "for i = 1, m do current[i] = (got[i] == ARGV[2 + i]) end",
        "for i = 1, m do current[i] = true end",
        (
            "tests/cache/test_invalidation.py",
            "tests/cache/test_single_redis_faults.py",
        ),
    ),
    Mutant(
        "field-key-stringifies-arguments",
        'a cached field\'s key spells its arguments as strings: null and "None", 7 and '
        '"7" share an entry',
        "cache/strawberry/fields.py",
        "        return compose_key(self.name, parent, args=arguments)\n",
        "        return compose_key(self.name, parent, args={k: str(v) for k, v in"
        " arguments.items()})\n",
        (
            "tests/cache/strawberry/test_fields.py",
            "tests/api/test_key_collisions.py",
        ),
    ),
    Mutant(
        "merge-ignores-pending",
        "a Redis reply brings back the old version of a tag whose bump Redis refused",
        "cache/versions.py",
        """            if (pending and pending.blocks((tag,))) or (skip and tag in skip):
                continue  # Redis has not applied its bump: its version there is old""",
        """            if False:
                continue""",
        ("tests/cache/test_refused_writes.py", "tests/cache/test_view.py"),
    ),
    Mutant(
        "invalidate-keeps-flights",
        "a read that starts after an invalidation returned joins a load that began before it",
        "cache/invalidation.py",
        """        self._view.drop(tags)
        self._flights.detach(tags)""",
        """        self._view.drop(tags)""",
        (
            "tests/cache/test_single_redis_faults.py"
            "::test_a_read_after_a_queued_invalidation_does_not_join_an_older_load",
        ),
    ),
    Mutant(
        "refused-bump-keeps-breaker-closed",
        "a bump Redis refused leaves the breaker closed: successful reads keep it so, and "
        "nothing replays the bump while Redis answers reads",
        "cache/health.py",
        """            if self.breaker.closed:
                self.breaker.trip()""",
        """            if False:
                self.breaker.trip()""",
        ("tests/cache/test_refused_writes.py",),
    ),
    Mutant(
        "broadcast-ignored",
        "another instance's bump, received over the broadcast, does not move this "
        "instance's view: its L1 keeps serving the old value",
        "cache/invalidation.py",
        "        self._view.merge_late(zip(tags, versions, strict=True))\n",
        "",
        ("tests/cache/test_broadcast.py",),
    ),
    Mutant(
        "invalidate-drops-after-redis",
        "the writer's view drops the tags only after Redis answered the bump: while "
        "Redis refuses or is away, the writer keeps serving its old L1 entries",
        "cache/invalidation.py",
        """        self.mark(unique, row)
        await self._health.apply_pending()""",
        """        if self._health.redis is not None:
            self._view.pending.mark(unique, row)
        await self._health.apply_pending()
        self.drop(unique)""",
        (
            "tests/cache/test_invalidation.py",
            "tests/cache/test_single_redis_faults.py",
            "tests/cache/test_refused_writes.py",
        ),
    ),
    Mutant(
        "l2-read-ignores-versions",
        "an L2 entry is served whatever tag versions it was computed against (with the "
        "unconditional fill, the protocol model's NO_VERSION_CHECK)",
        "cache/codec.py",
        """        if not blob.startswith(prefix, _MAC_SIZE):
            return None
        return _read_trailer(blob, _MAC_SIZE + len(prefix))""",
        """        return _read_trailer(blob, _read_stamps(blob)[1])""",
        (
            "tests/cache/test_invalidation.py",
            "tests/cache/test_single_redis_faults.py",
            "tests/cache/test_reads.py",
        ),
    ),
    Mutant(
        "l1-ignores-versions",
        "an L1 entry is served whatever the view says of its tags",
        "cache/versions.py",
        "            if known.get(tag) != version:\n",
        "            if False:\n",
        (
            "tests/cache/test_invalidation.py",
            "tests/cache/test_single_redis_faults.py",
            "tests/cache/test_broadcast.py",
        ),
    ),
    Mutant(
        "probe-leaves-late-pending",
        "an invalidation queued while the probe was in flight waits for this instance's "
        "next Redis call: an idle writer leaves the other instances stale",
        "cache/health.py",
        """        if self.pending:
            # Queued while this probe was in flight""",
        """        if False:
            # Queued while this probe was in flight""",
        (
            "tests/cache/test_single_redis_faults.py"
            "::test_an_invalidation_queued_during_the_probe_is_replayed_without_traffic",
        ),
    ),
    Mutant(
        "relay-start-marks-nothing",
        "an instance starting does not mark the unapplied rows pending: it serves what a "
        "row another (or a dead) instance wrote covers until some relay applies it",
        "cache/relay.py",
        """            for row in page:
                self._mark(row.tags, row.id)""",
        """            for row in page:
                pass""",
        ("tests/cache/test_outbox.py::test_an_instance_starting_marks_unapplied_rows_pending",),
    ),
    Mutant(
        "relay-keeps-marks-applied-elsewhere",
        "the relay never clears the marks of rows another instance applied: their tags stay "
        "pending here, never cached again (model finding 4)",
        "cache/relay.py",
        "        self._clear_applied_elsewhere(marked, rows)\n",
        "",
        (
            "tests/cache/test_outbox.py"
            "::test_the_relay_clears_marks_of_rows_another_instance_applied",
        ),
    ),
    Mutant(
        "polling-starts-at-newest",
        "an instance whose broadcast is lost polls from the newest row, not below the first "
        "unapplied one: a row applied after the loss but written before it is never read",
        "cache/relay.py",
        """        if unapplied:
            return unapplied[0].id - 1
        return await self._outbox.last_id()""",
        """        return await self._outbox.last_id()""",
        (
            "tests/cache/test_outbox.py"
            "::test_polling_starts_at_the_first_unapplied_row_not_the_newest",
        ),
    ),
    Mutant(
        "row-applied-before-bump",
        "an outbox row is marked applied before Redis applied its bump: a refused bump is "
        "then never retried by any relay",
        "cache/health.py",
        """        tags = [GLOBAL_TAG] if batch.everything else list(batch.tags)
        versions: list[int | None] = []""",
        """        tags = [GLOBAL_TAG] if batch.everything else list(batch.tags)
        self._on_applied(sorted(mark for mark in batch.ids if mark >= 0))
        versions: list[int | None] = []""",
        ("tests/cache/test_outbox.py::test_a_row_whose_bump_redis_refused_stays_unapplied",),
    ),
    Mutant(
        "pending-not-checked-at-read-start",
        "a read checks pending marks only when its reply arrives: a bump applied in between "
        "clears the mark, and the reply's old versions and entries are believed",
        "cache/reads.py",
        "        blocked = pending.blocked(all_tags) if pending else frozenset()\n",
        "        blocked: frozenset[str] = frozenset()\n",
        ("tests/cache/test_model_findings.py::test_pending_is_checked_when_a_read_starts",),
    ),
    Mutant(
        "no-version-floor",
        "a version of unknown age (a late broadcast, a bump's own result) is merged like a "
        "fresh read's: it brings a dropped tag back at a version an L1 entry still holds",
        "cache/versions.py",
        """        if not self._room():
            return
        raised = False""",
        """        self.merge(versions)
        return
        raised = False""",
        (
            "tests/cache/test_model_findings.py"
            "::test_a_late_broadcast_does_not_revalidate_a_dropped_tag",
        ),
    ),
    Mutant(
        "l1-ignores-expected-tags",
        "an L1 entry is served to a reader whose tags for the key differ from the entry's: "
        "a value stored under other tags escapes this reader's invalidations",
        "cache/reads.py",
        "            and (expected is None or slot.tags == expected)\n",
        "",
        (
            "tests/cache/test_model_findings.py"
            "::test_l1_serves_an_entry_only_to_a_reader_expecting_its_tags",
        ),
    ),
    # The leases of L1 hits, and the fast lane of /graphql that replays them.
    Mutant(
        "lease-ignores-the-view",
        "a lease of an L1 hit outlives a drop, flush or raised version: a replayed response "
        "shows what a write already changed",
        "cache/versions.py",
        """            lease.revision == self.revision
            and lease.writes""",
        """            lease.writes""",
        ("tests/cache/test_leases.py", "tests/web/test_replays.py"),
    ),
    Mutant(
        "lease-ignores-l1-writes",
        "a lease of an L1 hit outlives an overwrite or eviction of its entry",
        "cache/versions.py",
        """            and lease.writes == self.writes
""",
        "",
        ("tests/cache/test_leases.py",),
    ),
    Mutant(
        "lease-ignores-expiry",
        "a lease of an L1 hit outlives the entry's TTL",
        "cache/versions.py",
        """            and time.monotonic() < lease.expires
""",
        "",
        ("tests/cache/test_leases.py", "tests/web/test_replays.py"),
    ),
    Mutant(
        "fill-keeps-leases",
        "a write to L1 leaves the leases taken before it: an overwritten or evicted entry "
        "goes on being replayed",
        "cache/reads.py",
        "            view.writes += 1  # an overwrite or an eviction: every lease ends\n",
        "",
        ("tests/cache/test_leases.py",),
    ),
    Mutant(
        "close-keeps-leases",
        "emptying L1 at close leaves the leases taken before it",
        "cache/engine.py",
        """            self._view.writes += 1
            self._l1.clear()""",
        """            self._l1.clear()""",
        ("tests/cache/test_leases.py",),
    ),
    Mutant(
        "flush-keeps-the-old-store",
        "an L1 flush leaves the replaced theine store full: a reference cycle, it and its "
        "values outlive the flush until a full garbage collection (two L1s in memory)",
        "cache/memory.py",
        "        old.close()\n        old.clear()\n",
        "        old.close()\n",
        ("tests/cache/test_memory.py",),
    ),
    Mutant(
        "slot-never-expires",
        "an L1 slot records no deadline: its lease never expires",
        "cache/reads.py",
        "            expires = now + effective if effective else math.inf\n",
        "            expires = math.inf\n",
        ("tests/cache/test_leases.py", "tests/web/test_replays.py"),
    ),
    Mutant(
        "replay-ignores-the-lease",
        "a response is replayed without asking whether L1 would still serve its entry",
        "cache/strawberry/response_cache.py",
        """            or not self._cache.holds(lease)
""",
        "",
        ("tests/cache/strawberry/test_serves_again.py", "tests/web/test_replays.py"),
    ),
    Mutant(
        "replay-ignores-the-scope-hint",
        "a private response is replayed after its scope hint was forgotten, when a lookup "
        "would look for a shared response first",
        "cache/strawberry/response_cache.py",
        """            or self._scopes.get(key, False) != stored.private
""",
        "",
        ("tests/cache/strawberry/test_serves_again.py",),
    ),
    Mutant(
        "replay-to-a-viewer",
        "a request with an Authorization header is answered from the anonymous fast lane",
        "graph/web/replays.py",
        """        if request.authorization is not None:
            return None
        key =""",
        """        key =""",
        ("tests/web/test_replays.py::test_a_viewer_is_never_answered_from_the_fast_lane",),
    ),
    Mutant(
        "replay-ignores-if-none-match",
        "the fast lane's key leaves out If-None-Match: a revalidation gets another's answer",
        "graph/web/replays.py",
        "request.method, media_type, request.if_none_match, source[0], source[1])\n        replay",
        "request.method, media_type, None, source[0], source[1])\n        replay",
        ("tests/web/test_replays.py::test_revalidations_are_replayed_with_their_own_answer",),
    ),
    Mutant(
        "cluster-slot-memo-kept-after-redirect",
        "the cluster tier keeps its remembered node of a slot after a redirect: a slot that "
        "moved is asked on its old node forever, every read paying a MOVED",
        "cache/cluster_nodes.py",
        "        self._slot_links.clear()  # the slot may have moved: ask redis-py's map again\n",
        "",
        ("tests/cache/test_cluster.py::test_moved_and_ask_are_followed_during_a_slot_migration",),
    ),
    Mutant(
        "bulk-split-takes-a-cut-reply",
        "a batch of GET replies split at CRLFs takes an empty value whose CRLF has not "
        "arrived as whole: the CRLF left in the socket puts the connection out of step",
        "cache/connections.py",
        """        if index + 1 == last:  # the value's CRLF has not arrived yet
            return None
""",
        "",
        ("tests/cache/test_connections.py",),
    ),
    Mutant(
        "cluster-timeout-fails-the-nodes-after",
        "a cluster node that times out also fails the nodes whose replies are read after "
        "its own: one slow master costs the keys of the healthy ones",
        "cache/cluster_nodes.py",
        """                    self._failed(link, error)
        finally:""",
        """                    self._failed(link, error)
                    break
        finally:""",
        (
            "tests/cache/test_cluster.py"
            "::test_a_slow_master_costs_its_keys_a_timeout_and_the_others_are_still_read",
        ),
    ),
)


@dataclass(frozen=True)
class Outcome:
    mutant: str
    verdict: str
    """``killed``, ``survived``, ``timeout`` (counted as killed) or ``error``."""
    seconds: float
    detail: str = ""


def _tracked_files(root: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (root / name).is_file()]


@contextmanager
def copied_tree(root: Path = ROOT) -> Iterator[Path]:
    """The tree as it is now (uncommitted changes included, ignored files left out) in a
    temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="strata-mutants-") as directory:
        copy = Path(directory)
        for name in _tracked_files(root):
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, target)
        yield copy


def _environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The copy first on the path: the editable install points at the working tree.
    env["PYTHONPATH"] = os.pathsep.join([str(copy), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _check_imports_from(copy: Path) -> None:
    """The tests must exercise the copy: a mutant applied where nobody imports it would
    survive for the wrong reason."""
    probe = "import cache, graph, models; print(cache.__file__, graph.__file__, models.__file__)"
    found = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=copy,
        env=_environment(copy),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    outside = [path for path in found if not Path(path).resolve().is_relative_to(copy.resolve())]
    if outside:
        raise RuntimeError(f"the copy's packages are not the ones imported: {outside}")


def _run_tests(copy: Path, tests: Sequence[str], timeout: float) -> tuple[str, float, str]:
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    started = time.monotonic()
    # A session of its own: on a timeout (or an interrupt) the whole group is killed, the
    # Redis and uvicorn processes its fixtures started included.
    process = subprocess.Popen(
        command,
        cwd=copy,
        env=_environment(copy),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - started, f"no verdict within {timeout:.0f} s"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    seconds = time.monotonic() - started
    tail = "\n".join(stdout.strip().splitlines()[-3:])
    if process.returncode == 0:
        return "passed", seconds, tail
    if process.returncode == 1:
        return "failed", seconds, _first_failure(stdout) or tail
    return "error", seconds, f"pytest exited {process.returncode}:\n{stdout[-2000:]}"


def _first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("FAILED"):
            return line
    return ""


@contextmanager
def applied(copy: Path, mutant: Mutant) -> Iterator[None]:
    path = copy / mutant.path
    text = path.read_text()
    count = text.count(mutant.original)
    if count != 1:
        raise LookupError(f"{mutant.name}: its original text occurs {count} times in {mutant.path}")
    path.write_text(text.replace(mutant.original, mutant.replacement))
    try:
        yield
    finally:
        path.write_text(text)


def run_mutant(copy: Path, mutant: Mutant, timeout: float) -> Outcome:
    try:
        with applied(copy, mutant):
            result, seconds, detail = _run_tests(copy, mutant.tests, timeout)
    except LookupError as error:
        return Outcome(mutant.name, "error", 0.0, str(error))
    verdict = {"failed": "killed", "passed": "survived"}.get(result, result)
    return Outcome(mutant.name, verdict, seconds, detail)


def run(mutants: Sequence[Mutant], timeout: float = DEFAULT_TIMEOUT, root: Path = ROOT) -> int:
    """Runs ``mutants`` on a copy of ``root``; prints one line per mutant and a total;
    returns the exit status (0 only if every mutant was killed)."""
    with copied_tree(root) as copy:
        _check_imports_from(copy)
        selected = sorted({test for mutant in mutants for test in mutant.tests})
        result, seconds, detail = _run_tests(copy, selected, timeout * 2)
        if result != "passed":
            print(f"baseline: the unmutated tests did not pass ({result}):\n{detail}")
            return 2
        print(f"baseline: the {len(selected)} test selections pass unmutated ({seconds:.1f} s)")
        outcomes = []
        for mutant in mutants:
            outcome = run_mutant(copy, mutant, timeout)
            outcomes.append(outcome)
            print(f"{outcome.verdict:<9} {outcome.mutant:<36} {outcome.seconds:6.1f} s", flush=True)
            if outcome.verdict in ("killed", "timeout") and outcome.detail:
                print(f"          by {outcome.detail}", flush=True)
            elif outcome.detail:
                print(f"          {outcome.detail}", flush=True)
    killed = sum(o.verdict in ("killed", "timeout") for o in outcomes)
    survived = [o.mutant for o in outcomes if o.verdict == "survived"]
    errors = [o.mutant for o in outcomes if o.verdict == "error"]
    print(
        f"total: {len(outcomes)} mutants, {killed} killed, {len(survived)} survived, "
        f"{len(errors)} errors"
    )
    if survived:
        print("survivors: " + ", ".join(survived))
    return 0 if not survived and not errors else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutants", description=__doc__)
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds each")
    options = parser.parse_args(argv)
    by_name = {mutant.name: mutant for mutant in MUTANTS}
    if options.list:
        for mutant in MUTANTS:
            print(f"{mutant.name:<36} {mutant.path}: {mutant.breaks}")
        return 0
    unknown = [name for name in options.names if name not in by_name]
    if unknown:
        parser.error(f"unknown mutants: {', '.join(unknown)} (see --list)")
    chosen = [by_name[name] for name in options.names] if options.names else list(MUTANTS)
    return run(chosen, options.timeout)


if __name__ == "__main__":
    sys.exit(main())
