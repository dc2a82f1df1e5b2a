"""The flytekit corpus (one small file per Flyte feature) and each case's expected outcome, computed by
running it locally with flytekit itself — remote tests compare against that, never a hard-coded value.

    from tests.flytekit_corpus.local import CASES, run_locally     # or: from .local import …
    expected = run_locally(case)          # LocalResult(ok, outputs, text, error)
    pyflyte_locally(case)                 # PyflyteResult(code, output) of `pyflyte run`
    pyflyte run --remote <case.path> <case.entity> *case.cli_args()   # then compare outputs

Gates: `stdin` is what flytekit's local run reads for them; `signals` is what a remote test sets with
FlyteRemote (`approve` for True on an approve gate, `set_signal` otherwise) for the same outcome.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
DATA = CORPUS / "data"
MARKER = "corpus-outcome: "  # as in _run_local.py


@dataclass(frozen=True)
class Case:
    """One run of one corpus entity.

    Attributes:
        id: the case's name in test ids.
        file: the corpus file (in this folder).
        entity: the workflow to run.
        inputs: JSON-able inputs (absent ones take their defaults); passed to pyflyte as `--name value`.
        fails_with: text the run's error must contain, when the run must fail.
        stdin: what the local run reads (flytekit's local gates prompt for approvals and inputs).
        signals: signal id -> value a remote test sets to release the gates the same way.
        deterministic: False when each real run gives another output (cache tokens): compare runs, not
            values.
    """

    id: str
    file: str
    entity: str = "wf"
    inputs: dict[str, Any] = field(default_factory=dict)
    fails_with: str | None = None
    stdin: str = ""
    signals: dict[str, Any] = field(default_factory=dict)
    deterministic: bool = True

    @property
    def path(self) -> Path:
        return CORPUS / self.file

    def cli_args(self) -> list[str]:
        """The inputs as pyflyte options: strings as they are, everything else as JSON."""
        args: list[str] = []
        for name, value in self.inputs.items():
            args += [f"--{name}", value if isinstance(value, str) else json.dumps(value)]
        return args


CASES: list[Case] = [
    Case("conditional-if", "conditional.py", inputs={"n": 7}),
    Case("conditional-elif", "conditional.py", inputs={"n": 3}),
    Case("conditional-else", "conditional.py", inputs={"n": -2}),
    Case("conditional-on-output", "conditional.py", entity="on_output", inputs={"n": 6}),
    Case("conditional-on-output-else", "conditional.py", entity="on_output", inputs={"n": 2}),
    Case("conditional-else-fail", "conditional.py", entity="fails", fails_with="n must be positive"),
    Case("map-task-tolerated-failure", "map_task.py"),
    Case("map-task-broadcast", "map_task.py", entity="broadcast", inputs={"xs": [1, 2, 3, 4], "factor": 3}),
    Case(
        "map-task-too-many-failures", "map_task.py", entity="too_many_failures", fails_with="cannot invert 0"
    ),
    Case("dynamic-nested", "dynamic_nested.py", inputs={"ns": [0, 2, 4]}),
    Case("sleep-gate", "sleep_gate.py", inputs={"name": "nap"}),
    Case("approve-gate", "approve_gate.py", stdin="y\n", signals={"approve-total": True}),
    Case("input-gate", "input_gate.py", stdin="Dr\n", signals={"title": "Dr"}),
    Case("on-failure", "on_failure.py", fails_with="step failed for corpus"),
    Case("cache", "cache.py", inputs={"n": 5}),
    Case("cache-token", "cache.py", entity="tokens", deterministic=False),
    Case("retries-recoverable", "retries.py"),
    Case("retries-not-recoverable", "retries.py", entity="not_recoverable", fails_with="broken for 4"),
    Case("subworkflow", "subworkflow.py", inputs={"x": 10}),
    Case("launchplan-node", "launchplan_node.py", inputs={"x": 7}),
    Case("files", "files.py", inputs={"text": "some text", "n": 2}),
    Case("file-input", "files.py", entity="file_input", inputs={"f": str(DATA / "lines.txt")}),
    Case("dataclass", "dataclass_io.py"),
    Case("dataclass-attribute", "dataclass_io.py", entity="attribute"),
    Case("types", "types_mix.py", inputs={"color": "red", "label": "x", "values": [1.0, 2.0, 4.5]}),
    Case("types-optional-output", "types_mix.py", entity="optional_out"),
]


@dataclass(frozen=True)
class LocalResult:
    """What flytekit's local run of a case gave: its outputs by name (normalized), or its error."""

    ok: bool
    outputs: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # the outputs as `pyflyte run` prints them
    error: str = ""


def flytekit_env(home: Path) -> dict[str, str]:
    """An environment for flytekit subprocesses: no user config, a private local cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYTE_", "FLYTECTL_"))}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1")
    return env


@dataclass(frozen=True)
class PyflyteResult:
    """What `pyflyte run` of a case gave: its exit code and everything it printed."""

    code: int
    output: str


_OUTCOMES: dict[str, tuple[LocalResult, PyflyteResult]] = {}


def run_locally(case: Case) -> LocalResult:
    """The case's outcome with flytekit's Python API (a fresh local cache, its stdin for gates)."""
    return outcomes()[case.id][0]


def pyflyte_locally(case: Case) -> PyflyteResult:
    """The case run by `pyflyte run FILE ENTITY --input value …` (pyflyte's own command, in-process)."""
    return outcomes()[case.id][1]


def outcomes() -> dict[str, tuple[LocalResult, PyflyteResult]]:
    """Every case run once by flytekit, in one interpreter (flytekit is imported once): computed once per
    test run, and shared by pytest-xdist's workers through a locked file."""
    if not _OUTCOMES:
        _OUTCOMES.update(_shared())
    return _OUTCOMES


def _shared() -> dict[str, tuple[LocalResult, PyflyteResult]]:
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:  # one process: the dict above is the whole cache
        return _parse(_run_all())
    folder = Path(tempfile.gettempdir()) / f"asyncrun-corpus-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / f"{run_id}.json"
    with open(folder / f"{run_id}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker computes, the others wait and read
        if not stored.exists():
            stored.write_text(json.dumps(_run_all()))
        return _parse(json.loads(stored.read_text()))


def _run_all() -> dict[str, Any]:
    cases = [
        {
            "id": case.id,
            "path": str(case.path),
            "entity": case.entity,
            "inputs": case.inputs,
            "stdin": case.stdin,
            "args": case.cli_args(),
        }
        for case in CASES
    ]
    with tempfile.TemporaryDirectory() as home:
        env = {**flytekit_env(Path(home)), "COLUMNS": "400"}  # rich must not wrap the error message
        result = subprocess.run(
            [sys.executable, str(CORPUS / "_run_local.py"), json.dumps(cases)],
            capture_output=True,
            text=True,
            cwd=CORPUS,
            env=env,
            timeout=600,
            check=False,
        )
    found = [line[len(MARKER) :] for line in result.stdout.splitlines() if line.startswith(MARKER)]
    lines = [json.loads(line) for line in found]
    if result.returncode != 0 or len(lines) != len(cases):
        raise RuntimeError(f"the corpus's local runner failed:\n{result.stdout}\n{result.stderr}")
    return {line["id"]: line for line in lines}


def _parse(raw: dict[str, Any]) -> dict[str, tuple[LocalResult, PyflyteResult]]:
    parsed = {}
    for case_id, line in raw.items():
        outcome = line["outcome"]
        local = (
            LocalResult(ok=True, outputs=outcome["outputs"], text=outcome["text"])
            if outcome["ok"]
            else LocalResult(ok=False, error=outcome["error"])
        )
        parsed[case_id] = (local, PyflyteResult(**line["pyflyte"]))
    return parsed
