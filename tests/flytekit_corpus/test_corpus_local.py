"""The corpus proves itself: every case runs under `pyflyte run` (locally; pyflyte's own command, run
in-process) and gives the outcome `run_locally` (flytekit's Python API) computes — the value remote tests
compare against."""

from __future__ import annotations

import pytest

from .local import CASES, CORPUS, Case, pyflyte_locally, run_locally

pytestmark = pytest.mark.timeout(600)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_case_runs_under_pyflyte_as_expected(case: Case) -> None:
    expected = run_locally(case)
    if case.fails_with is not None:
        assert not expected.ok, f"{case.id} should fail but gave {expected.outputs}"
        assert case.fails_with in expected.error
    else:
        assert expected.ok, expected.error
    result = pyflyte_locally(case)
    if case.fails_with is not None:
        assert result.code != 0, result.output
        assert case.fails_with in result.output
        return
    assert result.code == 0, result.output
    if case.deterministic:
        assert result.output.rstrip().endswith(expected.text), result.output


def _outputs(case_id: str) -> object:
    case = next(case for case in CASES if case.id == case_id)
    result = run_locally(case)
    assert result.ok, result.error
    return result.outputs["o0"]


def test_each_branch_gives_its_own_value() -> None:
    taken = [_outputs(f"conditional-{branch}") for branch in ("if", "elif", "else")]
    assert len(set(taken)) == 3, taken
    assert _outputs("conditional-on-output") != _outputs("conditional-on-output-else")


def test_the_tolerated_map_failure_is_a_none() -> None:
    values = _outputs("map-task-tolerated-failure")
    assert isinstance(values, list) and values.count(None) == 1 and len(values) > 1


def test_every_corpus_file_has_a_case() -> None:
    files = {path.name for path in CORPUS.glob("*.py") if not path.name.startswith(("_", "test_"))}
    files -= {"__init__.py", "local.py"}
    assert files == {case.file for case in CASES}
    assert len({case.id for case in CASES}) == len(CASES)
