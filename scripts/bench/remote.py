#!/usr/bin/env python3
"""Wall time from command start to execution created: `asyncrun run --remote` vs `pyflyte run --remote`.

    python scripts/bench/remote.py [--rounds 5] [--setup] [--json PATH]

Same sandbox for both, the hello workflow and its flytekit twin. "cold": the code changed since the
last run (new package, upload, registration); "unchanged": the same code again. Runs alternate
A B A B, each on a quiet machine (the runs a command starts are let finish first); medians and
the ratio. Targets: asyncrun <= 0.20x pyflyte on cold code and <= 0.10x on unchanged code;
asyncrun on the flytekit file itself <= 0.8x. Where the time goes: each round also times
`asyncrun run hello.py wf --help` (start-up, the imports and loading the file: the floor any
`run --remote` pays before its first call), reported as the start-up floor.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from _common import (
    FLYTEKIT_HELLO,
    ROOT,
    Case,
    Target,
    asyncrun_cmd,
    flytekit_bin,
    machine,
    median,
    sandbox,
    timed,
    verdict,
    wait_idle,
    write_results,
)

TARGETS = {"cold": 0.20, "unchanged": 0.10}
FLYTEKIT_TARGET = 0.8  # both import flytekit; the rest is asyncrun's


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--flytekit-bin", help="bin folder of a virtualenv with flytekit 1.16.31")
    parser.add_argument("--setup", action="store_true", help="create .bench-venv/flytekit first")
    parser.add_argument("--json", help="also write the results to this file (read by report.py)")
    args = parser.parse_args()
    fk = flytekit_bin(args.flytekit_bin, setup=args.setup)
    work = Path(tempfile.mkdtemp(prefix="asyncrun-bench-remote-"))
    (work / "a").mkdir()
    (work / "f").mkdir()
    ours_hello = (ROOT / "examples" / "hello.py").read_text()
    # "a": asyncrun on its hello.py; "af": asyncrun on the flytekit file; "f": pyflyte on the flytekit file.
    results: dict[str, dict[str, list[float]]] = {
        state: {"a": [], "af": [], "f": []} for state in ("cold", "unchanged")
    }
    floor: list[float] = []  # `asyncrun run hello.py wf --help`: start-up and loading the file
    with sandbox(extra_path=[fk] if fk else None) as sb:
        env = {
            **os.environ,
            "FLYTE_PLATFORM_URL": sb.endpoint,
            "FLYTE_PLATFORM_INSECURE": "True",
            "HOME": str(work),
            "ASYNCRUN_HOME": str(work / "state"),
        }
        for round_ in range(args.rounds):
            # A changed comment is changed code: a new digest, upload, version and registration.
            (work / "a" / "hello.py").write_text(f"# round {round_}\n{ours_hello}")
            (work / "f" / "hello.py").write_text(f"# round {round_}\n{FLYTEKIT_HELLO}")
            floor.append(timed(asyncrun_cmd("run", "hello.py", "wf", "--help"), cwd=work / "a", env=env))
            for state in ("cold", "unchanged"):
                results[state]["a"].append(
                    timed(
                        asyncrun_cmd("run", "--remote", "hello.py", "wf"),
                        cwd=work / "a",
                        env=env,
                    )
                )
                wait_idle(sb.endpoint)
                results[state]["af"].append(
                    timed(
                        asyncrun_cmd("run", "--remote", "hello.py", "wf", flytekit=True),
                        cwd=work / "f",
                        env=env,
                    )
                )
                wait_idle(sb.endpoint)
                if fk:
                    results[state]["f"].append(
                        timed(
                            [str(fk / "pyflyte"), "run", "--remote", "hello.py", "wf"],
                            cwd=work / "f",
                            env=env,
                        )
                    )
                    wait_idle(sb.endpoint)
    print(f"machine: {machine()}")
    print(f"rounds: {args.rounds}, alternating asyncrun / pyflyte, same sandbox\n")
    print(f"{'case':<16} {'asyncrun (s)':>12} {'pyflyte (s)':>12} {'ratio':>7}  target")
    for state, runs in results.items():
        for ours, label, limit in (("a", state, TARGETS[state]), ("af", f"{state} (fk)", FLYTEKIT_TARGET)):
            a = median(runs[ours])
            if runs["f"]:
                f = median(runs["f"])
                met = verdict(a / f <= limit)
                print(f"{label:<16} {a:>12.3f} {f:>12.3f} {a / f:>7.3f}  <= {limit:.2f} {met}")
            else:
                print(f"{label:<16} {a:>12.3f} {'-':>12}")
    print(f"(fk): asyncrun on the flytekit file itself, target <= {FLYTEKIT_TARGET:.2f}")
    floor_note = ""
    if results["cold"]["f"]:
        pyflyte_unchanged = median(results["unchanged"]["f"])
        floor_note = (
            f"start-up floor: {median(floor):.3f} s = {median(floor) / pyflyte_unchanged:.3f}x of pyflyte's "
            "unchanged run --remote, before any call to the control plane"
        )
        print(floor_note)
    if args.json:
        cases = [
            Case(
                f"run --remote, {state} code",
                "s",
                runs["a"],
                runs["f"],
                Target(f"asyncrun / pyflyte <= {TARGETS[state]:.2f}", "ratio", "<=", TARGETS[state]),
                note=floor_note,
            )
            for state, runs in results.items()
        ]
        fk_target = Target("asyncrun / pyflyte <= 0.8 (same flytekit file)", "ratio", "<=", FLYTEKIT_TARGET)
        cases += [
            Case(f"run --remote flytekit file, {state} code", "s", runs["af"], runs["f"], fk_target)
            for state, runs in results.items()
        ]
        cases.append(
            Case(
                "run hello.py wf --help (start-up floor)", "s", floor, note="asyncrun's imports and the file"
            )
        )
        params = {"rounds": args.rounds, "flytekit_bin": str(fk or "")}
        write_results(args.json, "remote", params, cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
