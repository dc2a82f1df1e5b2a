"""The benchmarks' results files (`scripts/bench/_common.py`): verdicts, pooling, and the round trip
through JSON that `report.py` relies on."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "bench"))

from _common import Case, Target, merge, read_results, write_results

QUARTER = Target("asyncrun / pyflyte <= 0.25", "ratio", "<=", 0.25)
TENFOLD = Target("asyncrun / flytekit >= 10x", "ratio", ">=", 10.0)


def test_ratio_targets_compare_the_medians() -> None:
    fast = Case("run --help", "s", [0.1, 0.2, 0.9], [1.0, 0.8, 5.0], QUARTER)
    assert fast.median_asyncrun == 0.2 and fast.median_flytekit == 1.0
    assert fast.ratio == pytest.approx(0.2) and fast.measured == pytest.approx(0.2) and fast.met is True
    slow = Case("run --help", "s", [0.3], [1.0], QUARTER)
    assert slow.met is False
    launches = Case("launches/s", "launches/s", [300.0], [20.0], TENFOLD)
    assert launches.ratio == 15.0 and launches.met is True
    assert Case("launches/s", "launches/s", [150.0], [20.0], TENFOLD).met is False


def test_absolute_targets_use_the_median_or_the_worst_sample() -> None:
    status = Case("status", "ms", [90, 95, 400], target=Target("median <= 100 ms", "median", "<=", 100))
    assert status.measured == 95 and status.met is True
    latency = Case("latency", "s", [0.5, 1.0, 3.5], target=Target("<= 3 s", "max", "<=", 3.0))
    assert latency.measured == 3.5 and latency.met is False
    rate = Case("executions/s", "executions/s", [9.0, 12.0, 11.0], target=Target(">= 10", "median", ">=", 10))
    assert rate.met is True


def test_what_is_not_measured_is_neither_met_nor_failed() -> None:
    assert Case("run --help", "s", [0.1], [], QUARTER).met is None  # no flytekit to compare with
    assert Case("rss", "MB", [], target=Target("<= 150 MB", "max", "<=", 150)).met is None
    assert Case("info", "MB", [40.0]).met is None  # no target
    assert Case("nan", "s", [math.nan], target=Target("<= 3 s", "max", "<=", 3)).met is None


def test_a_failed_condition_fails_the_target_whatever_the_value() -> None:
    heard = Case("latency", "s", [0.5], target=Target("<= 3 s", "max", "<=", 3.0), ok=False)
    assert heard.measured == 0.5 and heard.met is False


def test_runs_pool_by_case_name() -> None:
    first = [Case("a", "s", [1.0], [4.0], QUARTER, note="x"), Case("b", "MB", [10.0])]
    second = [Case("b", "MB", [30.0], note="y"), Case("a", "s", [3.0], [4.0], QUARTER, ok=False)]
    a, b = merge([first, second])
    assert (a.name, a.asyncrun, a.flytekit, a.ok, a.note) == ("a", [1.0, 3.0], [4.0, 4.0], False, "x")
    assert (b.name, b.asyncrun, b.note) == ("b", [10.0, 30.0], "y")
    assert first[0].asyncrun == [1.0], "merging must not change its inputs"


def test_results_file_round_trip(tmp_path: Path) -> None:
    cases = [
        Case("run --help", "s", [0.1, 0.2], [1.0, 1.2], QUARTER, note="n"),
        Case("rss", "MB", [], target=Target("<= 150 MB", "max", "<=", 150)),
    ]
    path = tmp_path / "startup.json"
    write_results(path, "startup", {"runs": 2}, cases)
    raw = json.loads(path.read_text())
    assert raw["bench"] == "startup" and raw["params"] == {"runs": 2} and raw["machine"] and raw["date"]
    assert raw["cases"][0]["met"] is True and raw["cases"][0]["ratio"] == pytest.approx(0.15 / 1.1)
    assert raw["cases"][1]["met"] is None and raw["cases"][1]["measured"] is None
    data, back = read_results(path)
    assert data["schema"] == 1
    assert [c.to_json() for c in back] == [c.to_json() for c in cases]


def test_an_unknown_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"schema": 0, "cases": []}))
    with pytest.raises(SystemExit, match="schema 0"):
        read_results(path)
