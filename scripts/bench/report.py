#!/usr/bin/env python3
"""Run every benchmark, pool their numbers, and write docs/benchmarks.md with PNG charts.

    python scripts/bench/report.py [--setup] [--quick] [--only NAME[,NAME]] [--render-only]

Each benchmark script (startup, remote, get, launch, sandbox, wait, failfast) runs as a subprocess with
`--json`, several times where one invocation holds few samples; the samples of all invocations are
pooled per case (medians and ratios over the pool). The pooled results go to `docs/benchmarks/NAME.json`, the
charts to `docs/benchmarks/NAME.png`, and the report to `docs/benchmarks.md`; with `--only`, the
other benchmarks' sections come from their existing JSON files. `--render-only` rewrites the report
and charts from those files without measuring. `--readme` also refreshes the headline table between
`<!-- bench: headline -->` and `<!-- /bench: headline -->` in README.md.

`--quick` runs every benchmark briefly with small N, for trying this script out: its report says
"preliminary (quick run)" at the top. `--setup` creates `.bench-venv/flytekit` (flytekit 1.16.31)
and `.bench-venv/flyte` (Flyte 2's SDK, for the client's import time) first. Needs the `bench`
extra (matplotlib): `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    BENCH_VENV,
    FLYTEKIT,
    ROOT,
    Case,
    flyte2_python,
    flytekit_bin,
    machine,
    merge,
    read_results,
)

HERE = Path(__file__).resolve().parent
DOCS = ROOT / "docs"
OUT_DIR = DOCS / "benchmarks"
REPORT = DOCS / "benchmarks.md"
README = ROOT / "README.md"
HEADLINE = ("<!-- bench: headline -->", "<!-- /bench: headline -->")


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    what: str  # one paragraph for the report
    full: tuple[str, ...]  # arguments of a full run
    quick: tuple[str, ...]
    repeats: int  # invocations in a full run (quick: one)
    minutes: float  # rough wall time of one full invocation on an idle 2-core machine
    flytekit_option: str = "--flytekit-bin"  # how the script is told where flytekit is ("": it is not)


BENCHES = [
    Bench(
        "startup",
        "Start-up: `run --help`, `hello.py wf --help`, a local run, `import asyncrun.client`",
        "Wall time of each command, asyncrun and pyflyte alternating (A B A B) after one uncounted "
        "warm-up each, in a fresh state folder. Target: asyncrun / pyflyte <= 0.25; a local run of the "
        "flytekit file itself <= 1.0. `python -c 'import asyncrun.client'` is compared with "
        "`python -c 'import flyte'` (Flyte 2's SDK, flyte 2.12.1 in `.bench-venv/flyte`): target <= 0.7.",
        ("--runs", "7"),
        ("--runs", "3"),
        3,
        0.5,
        "--pyflyte",
    ),
    Bench(
        "remote",
        "`run --remote`: command start to execution created",
        "One sandbox for both tools; the hello workflow and its flytekit twin. *cold*: the code changed "
        "since the last run (new package, upload, registration); *unchanged*: the same code again. "
        "Alternating, each on a quiet sandbox. Targets: asyncrun <= 0.20x of pyflyte on cold code and "
        "<= 0.10x on unchanged code; on the flytekit file itself <= 0.8x. The start-up floor (`asyncrun "
        "run hello.py wf --help`: start, imports, loading the file) is timed in the same rounds.",
        ("--rounds", "5"),
        ("--rounds", "2"),
        2,
        1.0,
    ),
    Bench(
        "get",
        "`get NAME --nodes`: reading a finished run's node tree",
        "One sandbox, one finished run of a workflow with tasks, a sub-workflow (twice) and a launch-plan "
        "node. Whole processes as users run them, alternating: `asyncrun get NAME --nodes` (human output; "
        "`-o json` timed too) and a flytekit 1.16.31 script doing `FlyteRemote.fetch_execution` + "
        "`sync_execution(sync_nodes=True)` and printing the node ids; both checked once to read the same "
        "nodes. flytekit also fetches every node's inputs and outputs and syncs the launch-plan node's "
        "child run; asyncrun names the child run. Target: asyncrun <= 1/3 of flytekit.",
        ("--rounds", "5"),
        ("--rounds", "2"),
        2,
        1.0,
    ),
    Bench(
        "launch",
        "Launch throughput: `client.run(wait=False)` vs a `FlyteRemote.execute` loop",
        "A sandbox with `--rpc-delay-ms 50` (a remote control plane's latency); asyncrun launches 500 "
        "executions at once, flytekit 1.16.31 launches 60 in a loop as users write it (same rate, "
        "fewer runs). Target: >= 25x the launches per second.",
        ("--executions", "500", "--flytekit-executions", "60", "--rounds", "3"),
        ("--executions", "100", "--flytekit-executions", "15", "--rounds", "1"),
        1,
        1.2,
    ),
    Bench(
        "sandbox",
        "Sandbox throughput: end-to-end executions per second",
        "Trivial single-task runs launched with the client, run by the sandbox as `asyncrun-execute` "
        "processes forked from its warm worker and waited for until SUCCEEDED (polled every 0.05 s), "
        "16 at a time. Target: >= 100 executions/s. And a trivial flytekit task registered with "
        "`asyncrun run --remote`, launched 10 times one at a time: each attempt's duration "
        "(`pyflyte-execute`, RUNNING to SUCCEEDED). Target: <= 0.15 s.",
        ("--executions", "100", "--registrations", "200"),
        ("--executions", "30", "--registrations", "50", "--flytekit-tasks", "3"),
        3,
        0.4,
        "",
    ),
    Bench(
        "wait",
        "Waiting on many runs: the daemon vs flytekit-style per-run pollers",
        "A scripted FlyteAdmin in the benchmark's process counts every call. One daemon tracks N = 100, "
        "1,000, 10,000 and 100,000 RUNNING runs with 10 waiters; then every run flips to SUCCEEDED at "
        "once. Where N processes fit, N `asyncrun wait` processes (through one daemon) are compared with "
        "N flytekit-style pollers (one process per run, flytekit's own client). Targets: daemon peak RSS "
        "<= 150 MB at 10,000 runs and <= 250 MB at 100,000; ListExecutions calls per tick <= "
        "ceil(N/100) + 2; every run heard within one poll interval (2 s) + 1 s (+ 2 s at 100,000 runs); "
        "`asyncrun status` with a warm daemon median <= 100 ms.",
        ("--sizes", "100,1000,10000,100000", "--rounds", "3"),
        ("--quick", "--sizes", "100,10000", "--status-runs", "10"),
        1,
        9.0,
    ),
    Bench(
        "failfast",
        "Failing fast: how soon a failure is reported",
        "The time bounds the tests no longer assert (they check order and outcome): a command against an "
        "endpoint where nothing listens (exit 6, <= 8 s), a local task past its 200 ms timeout (exit 4, "
        "<= 4 s), a workflow whose first failure stops a sibling that would sleep an hour (exit 1, <= 5 s), "
        "the daemon's journal re-opened after its writer was SIGKILLed (<= 1.5 s).",
        ("--runs", "5"),
        ("--runs", "1"),
        1,
        0.5,
        "",
    ),
]
BY_NAME = {b.name: b for b in BENCHES}


# ---------------------------------------------------------------- measuring


def run_bench(bench: Bench, *, quick: bool, fk: Path | None, work: Path, commit: str) -> dict[str, Any]:
    """Every invocation of one benchmark; its pooled results, as written to NAME.json."""
    repeats = 1 if quick else bench.repeats
    groups: list[list[Case]] = []
    params: list[dict[str, Any]] = []
    started = time.monotonic()
    for i in range(repeats):
        out = work / f"{bench.name}-{i}.json"
        cmd = [sys.executable, str(HERE / f"{bench.name}.py"), *(bench.quick if quick else bench.full)]
        cmd += ["--json", str(out)]
        if fk is not None and bench.flytekit_option:
            cmd += [bench.flytekit_option, str(fk / "pyflyte" if bench.name == "startup" else fk)]
        print(f"== {bench.name} {i + 1}/{repeats}: {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)
        data, cases = read_results(out)
        groups.append(cases)
        params.append(data["params"])
    return {
        "schema": 1,
        "bench": bench.name,
        "machine": machine(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "flytekit": flytekit_version(fk),
        "quick": quick,
        "invocations": repeats,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "params": params,
        "cases": [c.to_json() for c in merge(groups)],
    }


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return commit + (
        " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    )


def flytekit_version(fk: Path | None) -> str:
    if fk is None:
        return "not installed"
    code = "from importlib.metadata import version; print(version('flytekit'))"
    out = subprocess.run([str(fk / "python"), "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


# ---------------------------------------------------------------- rendering


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".rstrip()


def verdict(case: Case) -> str:
    return {True: "**met**", False: "**NOT met**", None: "not measured"}[case.met]


def measured_text(case: Case) -> str:
    """What the target is checked against, in words."""
    assert case.target is not None
    if case.target.of == "ratio":
        return f"{fmt(case.median_asyncrun, case.unit)} vs {fmt(case.median_flytekit, case.unit)}"
    stat = "max" if case.target.of == "max" else "median"
    return f"{stat} {fmt(case.measured, case.unit)}"


def ratio_text(case: Case) -> str:
    return f"{case.ratio:.3g}" if case.ratio is not None else "—"


def chart(data: dict[str, Any], cases: list[Case], path: Path) -> None:
    """One box plot per case: asyncrun's samples and flytekit's side by side, the target as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [c for c in cases if c.asyncrun or c.flytekit]
    cols = min(3, len(shown))
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.6 * cols, 8.0), 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(shown) :]:
        ax.axis("off")
    for ax, case in zip(axes.flat, shown, strict=False):
        series = [("asyncrun", case.asyncrun, "#1f77b4")]
        if case.flytekit:
            series.append(("flytekit", case.flytekit, "#ff7f0e"))
        box = ax.boxplot(
            [s for _, s, _ in series],
            tick_labels=[label for label, _, _ in series],
            patch_artist=True,
            widths=0.5,
            showfliers=True,
        )
        for patch, (_, _, color) in zip(box["boxes"], series, strict=True):
            patch.set_facecolor(color)
            patch.set_alpha(0.45)
        if case.target is not None and case.target.of != "ratio":
            ax.axhline(case.target.value, color="#2ca02c" if case.met else "#d62728", linestyle="--", lw=1)
        title = case.name if len(case.name) <= 48 else case.name[:46] + "…"
        if case.target is not None:
            title += f"\n{case.target.text}: {'met' if case.met else 'NOT met' if case.met is False else '—'}"
            if case.ratio is not None:
                title += f" (ratio {case.ratio:.3g})"
        elif case.ratio is not None:
            title += f"\nasyncrun / flytekit = {case.ratio:.3g}"
        ax.set_title(title, fontsize=8)
        ax.set_ylabel(case.unit, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    prefix = "PRELIMINARY (quick run)\n" if data.get("quick") else ""
    fig.suptitle(f"{prefix}{BY_NAME[data['bench']].title.replace('`', '')}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def target_rows(all_data: list[tuple[dict[str, Any], list[Case]]]) -> list[str]:
    rows = [
        "| benchmark | case | target | measured | asyncrun / flytekit | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for data, cases in all_data:
        for case in cases:
            if case.target is None:
                continue
            rows.append(
                f"| {data['bench']} | {case.name} | {case.target.text} | {measured_text(case)} | "
                f"{ratio_text(case)} | {verdict(case)} |"
            )
    return rows


def headline(all_data: list[tuple[dict[str, Any], list[Case]]], quick: bool) -> list[str]:
    """The README's short table: the ratio targets and the sandbox and daemon numbers."""
    picks = {
        "startup": ["run --help", "run hello.py wf (local)"],
        "remote": ["run --remote, cold code", "run --remote, unchanged code"],
        "get": ["get --nodes"],
        "launch": None,
        "sandbox": ["executions/s end to end", "flytekit task attempt"],
        "wait": [
            "daemon peak RSS, N=10,000",
            "daemon peak RSS, N=100,000",
            "notification latency, N=100,000",
            "`asyncrun status ID` round trip, warm daemon",
        ],
    }
    rows = ["| | asyncrun | flytekit 1.16.31 | target | |", "|---|---|---|---|---|"]
    for data, cases in all_data:
        wanted = picks.get(data["bench"], [])
        for case in cases:
            if case.target is None or (wanted is not None and case.name not in wanted) or case.met is None:
                continue
            label = case.name.split(",")[0] if data["bench"] == "launch" else case.name
            # A bound on every one of many samples (each run's latency) shows the worst, not the median.
            worst = case.target.of == "max" and len(case.asyncrun) > 1
            value = measured_text(case) if worst else fmt(case.median_asyncrun, case.unit)
            rows.append(
                f"| {label} | {value} | "
                f"{fmt(case.median_flytekit, case.unit)} | {case.target.text} | {verdict(case)} |"
            )
    note = "Preliminary numbers from a quick run on a busy machine; " if quick else ""
    return [
        *rows,
        "",
        f"{note}all targets, samples and charts: [docs/benchmarks.md](docs/benchmarks.md).",
    ]


def render() -> tuple[str, list[str]]:
    all_data: list[tuple[dict[str, Any], list[Case]]] = []
    for bench in BENCHES:
        path = OUT_DIR / f"{bench.name}.json"
        if path.exists():
            data = json.loads(path.read_text())
            all_data.append((data, [Case.from_json(c) for c in data["cases"]]))
    if not all_data:
        raise SystemExit(f"no results in {OUT_DIR}: run without --render-only first")
    quick = any(data.get("quick") for data, _ in all_data)
    first = all_data[0][0]
    lines = ["# Benchmarks", ""]
    if quick:
        lines += [
            "> **Preliminary (quick run).** These numbers come from `report.py --quick` (few runs, small N) "
            "on a 2-core machine shared with other work: they show that the benchmarks run and roughly "
            "where asyncrun stands, not its real performance. The full run on an idle machine replaces "
            "this file.",
            "",
        ]
    commits = sorted({d["commit"] for d, _ in all_data})
    lines += [
        f"- machine: {first['machine']}",
        f"- date: {', '.join(sorted({d['date'][:10] for d, _ in all_data}))}",
        f"- asyncrun commit: {', '.join(commits)}, installed with `pip install .` in `.bench-venv/asyncrun` "
        "(byte-compiled, nothing else installed: as users get it; the sandbox and daemon run from there too)",
        f"- flytekit: {', '.join(sorted({d['flytekit'] for d, _ in all_data}))} (in `.bench-venv/flytekit`)",
        "- runs: "
        + "; ".join(f"{d['bench']} {d['invocations']} invocation(s) of {runs_text(d)}" for d, _ in all_data),
        "",
        "Ratios are asyncrun / flytekit of the medians (lower is better for times and memory, higher for "
        "rates). Every sample is in `docs/benchmarks/NAME.json`.",
        "",
        "## Targets",
        "",
        *target_rows(all_data),
        "",
    ]
    for data, cases in all_data:
        bench = BY_NAME[data["bench"]]
        lines += [
            f"## {bench.title}",
            "",
            bench.what,
            "",
            f"`{' '.join(['python', f'scripts/bench/{bench.name}.py', *params_args(data)])}`, "
            f"{data['invocations']} invocation(s), {data['date'][:16].replace('T', ' ')} UTC, "
            f"{data.get('minutes', '?')} min.",
            "",
            f"![{bench.name}](benchmarks/{bench.name}.png)",
            "",
            "| case | samples | asyncrun median | flytekit median | ratio | target | verdict | note |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for case in cases:
            samples = f"{len(case.asyncrun)}" + (f" / {len(case.flytekit)}" if case.flytekit else "")
            target = case.target.text if case.target else ""
            mark = verdict(case) if case.target else ""
            lines.append(
                f"| {case.name} | {samples} | {fmt(case.median_asyncrun, case.unit)} | "
                f"{fmt(case.median_flytekit, case.unit)} | {ratio_text(case)} | {target} | {mark} | "
                f"{case.note} |"
            )
        skipped = [
            p.get("client_processes_skipped") for p in data["params"] if p.get("client_processes_skipped")
        ]
        for reasons in skipped[:1]:
            for n, why in reasons.items():
                lines.append(f"\nN={int(n):,}: no client-process comparison ({'; '.join(why)}).")
        lines.append("")
    lines += reproduce()
    return "\n".join(lines) + "\n", headline(all_data, quick)


def runs_text(data: dict[str, Any]) -> str:
    return " ".join(params_args(data)) or "the defaults"


def params_args(data: dict[str, Any]) -> list[str]:
    bench = BY_NAME[data["bench"]]
    return list(bench.quick if data.get("quick") else bench.full)


def reproduce() -> list[str]:
    minutes = sum(b.minutes * b.repeats for b in BENCHES)
    return [
        "## How to reproduce",
        "",
        "On an idle machine (nothing else running: every benchmark alternates asyncrun and flytekit, but "
        "both share the CPU with whatever else runs), from a checkout:",
        "",
        "```bash",
        "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[bench]'",
        "python scripts/bench/report.py --setup --readme   # --setup: .bench-venv/flytekit, flytekit 1.16.31",
        "```",
        "",
        f"The full run takes about {minutes:.0f} minutes on 2 cores. `--only startup,remote` re-measures "
        "some benchmarks (the rest of the report comes from their JSON files), `--quick` tries everything "
        "out in a few minutes, `--render-only` redraws the report and charts from the JSON files. Each "
        "script also runs alone and prints its own tables: `python scripts/bench/wait.py --help`.",
    ]


def update_readme(table: list[str]) -> None:
    text = README.read_text()
    start, end = HEADLINE
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no {start} … {end} block to refresh")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    README.write_text(before + start + "\n" + "\n".join(table) + "\n" + end + after)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="few runs, small N: a preliminary report")
    parser.add_argument("--only", help=f"comma-separated benchmarks to run ({', '.join(BY_NAME)})")
    parser.add_argument("--setup", action="store_true", help=f"create {BENCH_VENV} with {FLYTEKIT} first")
    parser.add_argument("--flytekit-bin", help="bin folder of a virtualenv with flytekit 1.16.31")
    parser.add_argument("--render-only", action="store_true", help="only redraw from docs/benchmarks/*.json")
    parser.add_argument("--readme", action="store_true", help="refresh the headline table in README.md")
    args = parser.parse_args()
    names = [n.strip() for n in (args.only or ",".join(BY_NAME)).split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}: choose from {', '.join(BY_NAME)}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit("matplotlib is missing: pip install -e '.[bench]'") from None

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if not args.render_only:
        fk = flytekit_bin(args.flytekit_bin, setup=args.setup)
        if args.setup:
            flyte2_python(setup=True)  # Flyte 2's SDK: startup's import comparison
        if fk is None:
            print("no flytekit virtualenv (use --setup): flytekit comparisons are left out", file=sys.stderr)
        commit = git_commit()  # before anything runs: --readme changes README.md at the end
        with tempfile.TemporaryDirectory(prefix="asyncrun-bench-report-") as work:
            for name in names:
                data = run_bench(BY_NAME[name], quick=args.quick, fk=fk, work=Path(work), commit=commit)
                (OUT_DIR / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    for bench in BENCHES:
        path = OUT_DIR / f"{bench.name}.json"
        if path.exists() and (args.render_only or bench.name in names):
            data = json.loads(path.read_text())
            chart(data, [Case.from_json(c) for c in data["cases"]], OUT_DIR / f"{bench.name}.png")
    text, table = render()
    REPORT.write_text(text)
    print(f"wrote {REPORT.relative_to(ROOT)} and {OUT_DIR.relative_to(ROOT)}/*.png")
    if args.readme:
        update_readme(table)
        print("refreshed the headline table in README.md")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
