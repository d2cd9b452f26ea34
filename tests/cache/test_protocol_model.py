"""The cache protocol, model-checked: spin explores every interleaving of a small model.

``model/cache_protocol.pml`` models two instances, one Redis and one database (tag
versions read before a load, conditional fills, the L1 view and its pending marks,
broadcast and its loss, the outbox and its relay, faults). Each configuration below is
searched exhaustively for the two invariants (read-your-writes on the writer; once healed
and drained, every read equals the database). Each mutant (the same source under a -D
macro) must make spin find a counterexample, so the model can fail. docs/decisions.md,
"The protocol model", says what is modelled and what is abstracted away.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.strict import require_program

MODEL = Path(__file__).parent / "model" / "cache_protocol.pml"
# Verifier build: safety only; COLLAPSE keeps the biggest search near 250 MB.
CC_FLAGS = ("-O1", "-w", "-DSAFETY", "-DNOBOUNDCHECK", "-DCOLLAPSE")
PAN_FLAGS = ("-m10000", "-w24")  # depth bound well above the deepest path (~1000)
PAN_TIMEOUT_S = 240.0  # a loaded machine; quiet, the slowest search takes ~15 s
# The first test sets up every search (two at a time): the suite's 120 s per test does not
# cover them on a loaded machine, each search's own bound does.
pytestmark = pytest.mark.timeout(8 * PAN_TIMEOUT_S)


@dataclass(frozen=True)
class Run:
    name: str
    defines: tuple[str, ...]
    expect_violation: bool
    why: str


# Each exhaustive: one kind of fault (at most one event, then everything heals), or none.
# MAXW: writes (outbox rows) in a run. MAXLC=0 on the outage run: no locally versioned L1
# fills while Redis is down (with them the search does not fit in seconds).
CHECKS = (
    Run("no faults, two writes", ("-DMAXF=0", "-DMAXW=2"), False, ""),
    Run("Redis refusing writes", ("-DMAXF=1", "-DMAXW=1", "-DFAULTS=2"), False, ""),
    Run("broadcast lost", ("-DMAXF=1", "-DMAXW=1", "-DFAULTS=4"), False, ""),
    Run("writer restarted", ("-DMAXF=1", "-DMAXW=1", "-DFAULTS=8"), False, ""),
    Run("Redis down", ("-DMAXF=1", "-DMAXW=1", "-DFAULTS=1", "-DMAXLC=0"), False, ""),
)

MUTANTS = (
    Run(
        "no version check",
        ("-DNO_VERSION_CHECK", "-DMAXF=0", "-DMAXW=1"),
        True,
        "delete-on-invalidate with unconditional fills: the stale set race",
    ),
    Run(
        "no pending blocking",
        ("-DNO_PENDING", "-DMAXF=1", "-DMAXW=1", "-DFAULTS=2"),
        True,
        "Redis refusing writes: the un-bumped version is merged back (issue 13, item 2)",
    ),
    Run(
        "no L1 flush on broadcast loss",
        ("-DNO_FLUSH", "-DMAXF=1", "-DMAXW=1", "-DFAULTS=4"),
        True,
        "a bump published while the subscription was down is never learned",
    ),
    Run(
        "pending check only at reply",
        ("-DPENDING_AT_REPLY", "-DMAXF=1", "-DMAXW=1", "-DFAULTS=2"),
        True,
        "a read that reached Redis before the relay's bump is served after the mark clears",
    ),
    Run(
        "pending tag drops broadcasts",
        ("-DPENDING_BLOCKS_BROADCAST", "-DMAXF=1", "-DMAXW=2", "-DFAULTS=2"),
        True,
        "the newer version is lost; the bump's older result is merged when the mark clears",
    ),
    Run(
        "late versions merged without the floor",
        ("-DNO_FLOOR", "-DMAXF=1", "-DMAXW=2", "-DFAULTS=2"),
        True,
        "a delayed broadcast re-validates a dropped tag's old L1 entry",
    ),
    Run(
        "SPEC 7a read literally",
        ("-DSTRICT_7A", "-DMAXF=0", "-DMAXW=1"),
        True,
        "another instance serves what an unapplied row covers until its relay runs",
    ),
)


@dataclass(frozen=True)
class Outcome:
    run: Run
    errors: int
    states: int
    seconds: float
    violation: str
    output: str


def _verify(run: Run, workdir: Path) -> Outcome:
    """``spin -a``, cc, ``./pan`` in a fresh folder; parses errors and states stored."""
    folder = workdir / re.sub(r"[^a-z0-9]+", "-", run.name)
    folder.mkdir()
    model = folder / MODEL.name
    shutil.copyfile(MODEL, model)
    started = time.monotonic()
    subprocess.run(
        ["spin", *run.defines, "-a", model.name],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["cc", *CC_FLAGS, "-o", "pan", "pan.c"], cwd=folder, check=True, capture_output=True
    )
    pan = subprocess.run(
        ["./pan", *PAN_FLAGS],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=PAN_TIMEOUT_S,
    )
    seconds = time.monotonic() - started
    output = pan.stdout + pan.stderr
    errors = re.search(r"errors: (\d+)", output)
    states = re.search(r"(\d+) states, stored", output)
    violation = re.search(r"assertion violated (.*?) \(at depth", output)
    assert errors is not None, f"{run.name}: pan said\n{output}"
    assert states is not None, f"{run.name}: pan said\n{output}"
    return Outcome(
        run=run,
        errors=int(errors.group(1)),
        states=int(states.group(1)),
        seconds=seconds,
        violation=violation.group(1) if violation else "",
        output=output,
    )


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every run, two at a time (the machines running the suite have two cores)."""
    require_program("spin", "apt-get install spin (the test command installs it)")
    require_program("cc", "apt-get install gcc (spin's verifier is C)")
    workdir = tmp_path_factory.mktemp("spin")
    runs = (*CHECKS, *MUTANTS)
    workers = max(1, min(2, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # The two biggest searches first, so they do not run last alone.
        ordered = sorted(runs, key=lambda run: run.name not in {"Redis down", "writer restarted"})
        done = dict(zip(ordered, pool.map(lambda run: _verify(run, workdir), ordered), strict=True))
    for outcome in done.values():
        print(
            f"{outcome.run.name}: {outcome.errors} errors, {outcome.states} states, "
            f"{outcome.seconds:.1f} s {outcome.violation}"
        )
    return {run.name: outcome for run, outcome in done.items()}


@pytest.mark.parametrize("run", CHECKS, ids=[run.name for run in CHECKS])
def test_the_protocol_keeps_both_invariants(outcomes: dict[str, Outcome], run: Run) -> None:
    outcome = outcomes[run.name]
    assert outcome.errors == 0, (
        f"spin found a counterexample to the protocol ({outcome.violation}); replay it "
        f"with `spin {' '.join(run.defines)} -t -p cache_protocol.pml`:\n{outcome.output}"
    )
    # The search really ran: a model that deadlocks at once would also report 0 errors.
    assert outcome.states > 10_000


@pytest.mark.parametrize("run", MUTANTS, ids=[run.name for run in MUTANTS])
def test_a_broken_protocol_is_caught(outcomes: dict[str, Outcome], run: Run) -> None:
    outcome = outcomes[run.name]
    assert outcome.errors >= 1, f"spin found no counterexample: {run.why}\n{outcome.output}"
    assert outcome.violation, outcome.output  # an invariant, not a deadlock or a bound
