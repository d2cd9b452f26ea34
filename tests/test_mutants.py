"""The mutation runner itself (tests/mutants.py): it must see a mutant die, see one live,
refuse a mutant that no longer applies, and every mutant of the list must be killed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import mutants
from tests.mutants import MUTANTS, Mutant

KEYS_TEST = "tests/cache/test_keys.py::test_classic_collisions_are_apart"


def test_a_mutant_whose_text_is_gone_is_an_error_not_a_survivor(tmp_path: Path) -> None:
    (tmp_path / "module.py").write_text("answer = 42\n")
    stale = Mutant("stale", "nothing", "module.py", "answer = 41", "answer = 0", ("x",))
    outcome = mutants.run_mutant(tmp_path, stale, timeout=5)
    assert outcome.verdict == "error"
    assert "occurs 0 times" in outcome.detail
    assert (tmp_path / "module.py").read_text() == "answer = 42\n"


def test_every_mutant_applies_to_the_tree_once() -> None:
    root = Path(mutants.__file__).resolve().parent.parent
    assert len({mutant.name for mutant in MUTANTS}) == len(MUTANTS)
    for mutant in MUTANTS:
        assert (root / mutant.path).read_text().count(mutant.original) == 1, mutant.name
        assert mutant.original != mutant.replacement


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_runner_tells_a_killed_mutant_from_a_survivor(
    capsys: pytest.CaptureFixture[str],
) -> None:
    killed = next(mutant for mutant in MUTANTS if mutant.name == "none-is-the-string-none")
    harmless = Mutant(
        "a-comment",
        "changes a comment only",
        "cache/keys.py",
        "# bool before int: True is an int to Python, not to a key.",
        "# (a comment, changed)",
        (KEYS_TEST,),
    )
    assert mutants.run([killed, harmless]) == 1
    out = capsys.readouterr().out
    assert "killed    none-is-the-string-none" in out
    assert "survived  a-comment" in out
    assert "total: 2 mutants, 1 killed, 1 survived, 0 errors" in out


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_mutant_of_the_guarantee_paths_is_killed(capsys: pytest.CaptureFixture[str]) -> None:
    status = mutants.run(MUTANTS)
    out = capsys.readouterr().out
    print(out)
    assert status == 0, out
